# The unit tests that live beside the code (src/<part>/*_test.cc), in one executable.
include(GoogleTest)

add_executable(ordertrace_unit_tests
  ${PROJECT_SOURCE_DIR}/src/otlp/proto_codec_test.cc
  ${PROJECT_SOURCE_DIR}/src/otlp/json_codec_test.cc
  ${PROJECT_SOURCE_DIR}/src/lifecycle/order_record_builder_test.cc
  ${PROJECT_SOURCE_DIR}/src/lifecycle/order_timeline_test.cc
  ${PROJECT_SOURCE_DIR}/src/store/rocks_store_test.cc
  ${PROJECT_SOURCE_DIR}/src/store/retention_test.cc
  ${PROJECT_SOURCE_DIR}/src/ingest/ingester_test.cc
  ${PROJECT_SOURCE_DIR}/src/query/trace_query_test.cc)
target_link_libraries(ordertrace_unit_tests PRIVATE
  ordertrace_model
  ordertrace_otlp
  ordertrace_lifecycle
  ordertrace_store
  ordertrace_ingest
  ordertrace_query
  otlp_proto
  absl::status
  absl::statusor
  Threads::Threads
  GTest::gmock
  GTest::gtest_main)
gtest_discover_tests(ordertrace_unit_tests DISCOVERY_TIMEOUT 60)
