#include "services/common/order_transitions.h"

#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace ordertrace::services {
namespace {

// docs/services.md, "The lifecycle": status, set by, span.
struct DocumentedStep {
  const char* status;
  const char* service;
  const char* span_name;
};

constexpr DocumentedStep kDocumented[] = {
    {"INITIATED", "shop-api", "shop.init"},
    {"FILE_UPLOADED", "shop-api", "shop.upload"},
    {"SUBMITTED", "shop-api", "shop.submit"},
    {"PRICE_CALCULATION_STARTED", "mes-api", "mes.price.start"},
    {"PRICE_CALCULATED", "mes-api", "mes.price.calc"},
    {"MANUFACTURING_APPROVED", "crm-api", "crm.approve.manufacturing"},
    {"MANUFACTURING_STARTED", "mes-api", "mes.manufacturing.start"},
    {"MANUFACTURING_COMPLETED", "mes-api", "mes.manufacturing.complete"},
    {"PACKAGING", "mes-api", "mes.packaging"},
    {"SHIPPED", "mes-api", "mes.shipped"},
    {"CLOSED", "crm-api", "crm.close"},
};

TEST(OrderTransitionsTest, ElevenStatusesInTheDocumentedOrder) {
  ASSERT_EQ(std::size(kDefaultLifecycle), 11u);
  for (size_t i = 0; i < std::size(kDocumented); ++i) {
    SCOPED_TRACE(kDocumented[i].status);
    EXPECT_EQ(kDefaultLifecycle[i].status, kDocumented[i].status);
    EXPECT_EQ(LifecycleIndex(kDocumented[i].status), static_cast<int>(i));
  }
  EXPECT_EQ(kInitiated, "INITIATED");
  EXPECT_EQ(kPriceCalculationStarted, "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(kClosed, "CLOSED");
}

TEST(OrderTransitionsTest, FindStepGivesTheDocumentedServiceAndSpan) {
  for (const DocumentedStep& documented : kDocumented) {
    SCOPED_TRACE(documented.status);
    std::optional<LifecycleStep> step = FindStep(documented.status);
    ASSERT_TRUE(step.has_value());
    EXPECT_EQ(step->status, documented.status);
    EXPECT_EQ(step->service, documented.service);
    EXPECT_EQ(step->span_name, documented.span_name);
  }
}

TEST(OrderTransitionsTest, UnknownStatusesAreNotInTheLifecycle) {
  for (std::string_view unknown : {"", "initiated", "SHIPPING", "CLOSED ", "CANCELLED"}) {
    SCOPED_TRACE(std::string(unknown));
    EXPECT_FALSE(FindStep(unknown).has_value());
    EXPECT_EQ(LifecycleIndex(unknown), -1);
    EXPECT_EQ(PreviousStatus(unknown), "");
  }
}

TEST(OrderTransitionsTest, PreviousStatusIsTheStepBefore) {
  EXPECT_EQ(PreviousStatus("INITIATED"), "");
  EXPECT_EQ(PreviousStatus("FILE_UPLOADED"), "INITIATED");
  EXPECT_EQ(PreviousStatus("PRICE_CALCULATED"), "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(PreviousStatus("MANUFACTURING_APPROVED"), "PRICE_CALCULATED");
  EXPECT_EQ(PreviousStatus("MANUFACTURING_STARTED"), "MANUFACTURING_APPROVED");
  EXPECT_EQ(PreviousStatus("CLOSED"), "SHIPPED");
  for (size_t i = 1; i < std::size(kDocumented); ++i) {
    EXPECT_EQ(PreviousStatus(kDocumented[i].status), kDocumented[i - 1].status);
  }
}

TEST(OrderTransitionsTest, StatusRoutingKeyIsStatusDotLowerCase) {
  EXPECT_EQ(StatusRoutingKey("INITIATED"), "status.initiated");
  EXPECT_EQ(StatusRoutingKey("PRICE_CALCULATION_STARTED"), "status.price_calculation_started");
  EXPECT_EQ(StatusRoutingKey("MANUFACTURING_APPROVED"), "status.manufacturing_approved");
  EXPECT_EQ(StatusRoutingKey("CLOSED"), "status.closed");
}

}  // namespace
}  // namespace ordertrace::services
