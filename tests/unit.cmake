# The unit tests that live beside the code (src/<part>/*_test.cc), in one executable.
include(GoogleTest)

file(GLOB ORDERTRACE_UNIT_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*/*_test.cc)
# Parts with a test target of their own, linked only to what the part may use.
list(FILTER ORDERTRACE_UNIT_TEST_SOURCES EXCLUDE REGEX "/src/http/")
add_executable(ordertrace_unit_tests ${ORDERTRACE_UNIT_TEST_SOURCES})
target_link_libraries(ordertrace_unit_tests PRIVATE
  ordertrace_model
  ordertrace_otlp
  ordertrace_lifecycle
  ordertrace_store
  ordertrace_ingest
  ordertrace_scrub
  ordertrace_query
  ordertrace_gaps
  ordertrace_server
  ordertrace_forward
  otlp_proto
  RocksDB::rocksdb
  PkgConfig::HTTPLIB
  nlohmann_json::nlohmann_json
  absl::status
  absl::statusor
  Threads::Threads
  GTest::gmock
  GTest::gtest_main)
# Tests share helpers under tests/support.
target_include_directories(ordertrace_unit_tests PRIVATE ${PROJECT_SOURCE_DIR})
# TLS tests make their CA with tests/support/make_test_ca.sh (set on those files only: a
# definition on the target would rebuild every test).
set_source_files_properties(${PROJECT_SOURCE_DIR}/src/gaps/alertmanager_client_test.cc
  PROPERTIES COMPILE_DEFINITIONS ORDERTRACE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(ordertrace_unit_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)

# The HTTP layer's tests: ordertrace_http alone (and httplib as the client).
file(GLOB ORDERTRACE_HTTP_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/http/*_test.cc)
if(ORDERTRACE_HTTP_TEST_SOURCES)
add_executable(ordertrace_http_tests ${ORDERTRACE_HTTP_TEST_SOURCES})
target_link_libraries(ordertrace_http_tests PRIVATE
  ordertrace_http PkgConfig::HTTPLIB nlohmann_json::nlohmann_json ZLIB::ZLIB Threads::Threads
  OpenSSL::SSL OpenSSL::Crypto GTest::gmock GTest::gtest_main)
target_include_directories(ordertrace_http_tests PRIVATE ${PROJECT_SOURCE_DIR})
# The TLS tests make their CA with tests/support/make_test_ca.sh.
target_compile_definitions(ordertrace_http_tests PRIVATE
  ORDERTRACE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(ordertrace_http_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endif()
