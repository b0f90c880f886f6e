# The unit tests that live beside the code (src/<part>/*_test.cc), in one executable.
include(GoogleTest)

file(GLOB ORDERTRACE_UNIT_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*/*_test.cc)
add_executable(ordertrace_unit_tests ${ORDERTRACE_UNIT_TEST_SOURCES})
target_link_libraries(ordertrace_unit_tests PRIVATE
  ordertrace_model
  ordertrace_otlp
  ordertrace_lifecycle
  ordertrace_store
  ordertrace_ingest
  ordertrace_query
  ordertrace_gaps
  ordertrace_server
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
gtest_discover_tests(ordertrace_unit_tests DISCOVERY_TIMEOUT 60)
