# The unit tests that live beside the code: one executable per part (src/<part>/*_test.cc ->
# ordertrace_<part>_tests), linked to that part's library, what its own target may use and
# GoogleTest, so that a test calling into a part its library may not use fails to link.
include(GoogleTest)

# ordertrace_part_tests(<part> [LINKS <libs>...] [REACHES <libs>...])
#   LINKS: what the part's own target may use but does not pass on to its users (PRIVATE
#   dependencies whose headers its tests include: generated protobuf, httplib, ...).
#   REACHES: parts a test uses although the part's library may not; each one is a wrong arrow in
#   a test, named where it is called so that it stays visible until the test moves.
# Header-only test helpers (tests/support) are found from the project root. Parts without tests
# get no target.
function(ordertrace_part_tests part)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "LINKS;REACHES")
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${part}/*_test.cc)
  if(NOT sources)
    return()
  endif()
  set(target ordertrace_${part}_tests)
  add_executable(${target} ${sources})
  target_link_libraries(${target} PRIVATE
    ordertrace_${part} ${arg_LINKS} ${arg_REACHES} GTest::gmock GTest::gtest_main)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
  set_property(GLOBAL APPEND PROPERTY ORDERTRACE_UNIT_TEST_TARGETS ${target})
endfunction()

ordertrace_part_tests(base)
ordertrace_part_tests(model)
ordertrace_part_tests(otlp LINKS otlp_proto)
ordertrace_part_tests(lifecycle)
ordertrace_part_tests(store LINKS otlp_proto)
ordertrace_part_tests(scrub)
ordertrace_part_tests(ingest)
ordertrace_part_tests(query)
ordertrace_part_tests(gaps LINKS PkgConfig::HTTPLIB nlohmann_json::nlohmann_json
  # gap_detector_test.cc folds records with lifecycle::ApplySpan.
  REACHES ordertrace_lifecycle)
ordertrace_part_tests(sampling)
ordertrace_part_tests(metrics)
ordertrace_part_tests(auth LINKS nlohmann_json::nlohmann_json)
ordertrace_part_tests(forward LINKS otlp_proto gRPC::grpc++ PkgConfig::HTTPLIB)
ordertrace_part_tests(server LINKS otlp_proto PkgConfig::HTTPLIB nlohmann_json::nlohmann_json)
ordertrace_part_tests(http LINKS PkgConfig::HTTPLIB nlohmann_json::nlohmann_json ZLIB::ZLIB
  OpenSSL::SSL OpenSSL::Crypto)

# The TLS tests (the Alertmanager client's, the HTTP server's) make their CA with
# tests/support/make_test_ca.sh; the server's config tests read the shipped ordertrace.yaml.
foreach(target ordertrace_gaps_tests ordertrace_http_tests ordertrace_server_tests)
  if(TARGET ${target})
    target_compile_definitions(${target} PRIVATE ORDERTRACE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
