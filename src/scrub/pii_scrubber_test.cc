#include "scrub/pii_scrubber.h"

#include <memory>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ordertrace::scrub {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::unique_ptr<PiiScrubber> Defaults() {
  auto scrubber = PiiScrubber::Create({});
  EXPECT_TRUE(scrubber.ok()) << scrubber.status();
  return *std::move(scrubber);
}

uint64_t Count(const PiiScrubber& scrubber, const std::string& rule) {
  for (const PiiRuleCount& c : scrubber.Stats()) {
    if (c.rule == rule) return c.removed;
  }
  ADD_FAILURE() << "no rule " << rule;
  return 0;
}

base::TraceId Trace(uint8_t b) {
  base::TraceId id{};
  id.bytes.fill(b);
  return id;
}
base::SpanId SpanIdOf(uint8_t b) {
  base::SpanId id{};
  id.bytes.fill(b);
  return id;
}

base::Span MakeSpan(std::string name, base::Attributes attributes) {
  base::Span span;
  span.trace_id = Trace(1);
  span.span_id = SpanIdOf(2);
  span.name = std::move(name);
  span.start_time_unix_nano = 1'765'000'000'000'000'000ULL;
  span.end_time_unix_nano = span.start_time_unix_nano + 1000;
  span.attributes = std::move(attributes);
  return span;
}

PiiRule Rule(std::string name, std::string key_pattern, std::string value_pattern,
             PiiAction action = PiiAction::kRemove) {
  PiiRule rule;
  rule.name = std::move(name);
  rule.key_pattern = std::move(key_pattern);
  rule.value_pattern = std::move(value_pattern);
  rule.action = action;
  return rule;
}

base::KeyValue Str(std::string key, std::string value) {
  return {std::move(key), base::AnyValue::String(std::move(value))};
}

base::TraceBatch BatchOf(base::Span span, base::Attributes resource = {}) {
  base::TraceBatch batch;
  batch.resource_spans.emplace_back();
  batch.resource_spans[0].resource.attributes = std::move(resource);
  batch.resource_spans[0].scope_spans.emplace_back();
  batch.resource_spans[0].scope_spans[0].spans.push_back(std::move(span));
  return batch;
}

// The text with every match masked, through the public interface.
std::string Masked(const std::string& text) { return Defaults()->ScrubText(text); }

TEST(PiiRulesTest, EmailAddressesAreFound) {
  for (const char* email : {"a@b.de", "a.b+c@d-e.co.uk", "first.last@example.com",
                            "o'brien_x-y@mail.example.org", "UPPER.Case@Example.COM"}) {
    EXPECT_EQ(Masked(email), "[email]") << email;
    EXPECT_EQ(Masked(std::string("contact <") + email + "> today"), "contact <[email]> today")
        << email;
  }
  EXPECT_EQ(Masked("mailto:x@y.io,z@w.io"), "mailto:[email],[email]");
}

TEST(PiiRulesTest, NotEmailAddresses) {
  for (const char* text : {"user@localhost", "@handle", "a@", "price@12.50", "x@y", "a @ b.com",
                           "git@1.2", "ord-20261206-0001@"}) {
    EXPECT_EQ(Masked(text), text) << text;
  }
}

TEST(PiiRulesTest, InternationalPhoneNumbersAreFound) {
  for (const char* phone :
       {"+49 30 1234567", "+1 (415) 555-0100", "+44-20-7946-0958", "+4930123456",
        "+33.1.23.45.67.89", "+44 (0)20 7946 0958", "+1234567", "+123456789012345"}) {
    EXPECT_EQ(Masked(phone), "[phone]") << phone;
    EXPECT_EQ(Masked(std::string("call ") + phone + ", ask for Jo"), "call [phone], ask for Jo")
        << phone;
  }
}

TEST(PiiRulesTest, NationalPhoneNumbersAreFound) {
  for (const char* phone : {"(415) 555-0100", "(415)555-0100", "415-555-0100", "415.555.0100"}) {
    EXPECT_EQ(Masked(phone), "[phone]") << phone;
    EXPECT_EQ(Masked(std::string("tel ") + phone + "."), "tel [phone].") << phone;
  }
}

TEST(PiiRulesTest, NotPhoneNumbers) {
  for (const char* text :
       {// trace and span ids
        "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c803190", "00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // prices
        "1234567.89", "12,345,678.00 EUR", "EUR 1.234.567,89", "+12.50", "-1234567.00",
        // timestamps
        "2026-12-06T12:49:53.123456789Z", "2026-12-06 12:49:53", "2026-12-06T12:49:53+01:00",
        "1765025393000000000", "1765025393123", "06.12.2026 12:49",
        // order ids and other ids
        "ord-20261206-0001", "ORD-2026-000123", "P-7", "123e4567-e89b-12d3-a456-426614174000",
        "12345678-1234-1234-1234-123456789012",
        // too few or too many digits after '+', glued to a word
        "+123456", "+1234567890123456789", "v1+1234567", "1e+1234567",
        // addresses and versions
        "192.168.100.200", "10.0.0.1:4317", "1.2.3", "4155550100"}) {
    EXPECT_EQ(Masked(text), text) << text;
  }
}

// The phone rule's prefilter lets every number through (the tests above pass through it) and
// spares the regex the ids that have many digits.
TEST(PiiRulesTest, PhonePrefilterSkipsIdsWithManyDigits) {
  for (const char* number : {"+49 30 1234567", "x +1 (415) 555-0100", "(415) 555-0100",
                             "415-555-0100", "tel 415.555.0100"}) {
    EXPECT_TRUE(MayHoldPhoneNumber(number)) << number;
  }
  for (const char* id :
       {"6f1c1f5e-0c1a-4c39-9d55-0d8a6f0e2b11", "ord-20261206-0001", "2026-12-06T12:49:53Z",
        "1765025393000000000", "1234567.89", "4bf92f3577b34da6a3ce929d0e0e4736"}) {
    EXPECT_FALSE(MayHoldPhoneNumber(id)) << id;
  }
}

TEST(PiiScrubberTest, KeysThatNamePiiRemoveTheAttributeWhateverItsValue) {
  auto scrubber = Defaults();
  base::TraceBatch batch = BatchOf(MakeSpan("checkout", {Str("email", "not-an-address"),
                                                         Str("customer.email", "x"),
                                                         Str("phone", "n/a"),
                                                         Str("user.phone_number", "-"),
                                                         Str("a.b.phone", "1"),
                                                         Str("billing.phone2", "2"),
                                                         {"user.EMAIL", base::AnyValue::Int(3)},
                                                         Str("order.id", "ord-20261206-0001"),
                                                         Str("emailer.queue", "kept"),
                                                         Str("microphone", "kept too"),
                                                         Str("email_verified", "true")}));
  EXPECT_EQ(scrubber->Scrub(batch), 7u);
  const base::Span& span = batch.resource_spans[0].scope_spans[0].spans[0];
  ASSERT_EQ(span.attributes.size(), 4u);
  EXPECT_EQ(span.attributes[0].key, "order.id");
  EXPECT_EQ(span.attributes[1].key, "emailer.queue");
  EXPECT_EQ(span.attributes[2].key, "microphone");
  EXPECT_EQ(span.attributes[3].key, "email_verified");
  EXPECT_EQ(Count(*scrubber, "email"), 3u);
  EXPECT_EQ(Count(*scrubber, "phone"), 4u);
}

TEST(PiiScrubberTest, AKeyThatIsAnAddressRemovesTheAttribute) {
  auto scrubber = Defaults();
  base::TraceBatch batch =
      BatchOf(MakeSpan("s", {Str("seen.jo@example.com", "yes"), Str("ok", "1")}));
  scrubber->Scrub(batch);
  const base::Span& span = batch.resource_spans[0].scope_spans[0].spans[0];
  ASSERT_EQ(span.attributes.size(), 1u);
  EXPECT_EQ(span.attributes[0].key, "ok");
}

TEST(PiiScrubberTest, EveryPlaceInASpanIsScrubbed) {
  auto scrubber = Defaults();
  base::Span span = MakeSpan("notify jo@example.com at +49 30 1234567",
                             {Str("note", "jo@example.com"), Str("order.id", "ord-1"),
                              Str("comment", "ring +1 (415) 555-0100 after 5")});
  base::SpanEvent event;
  event.name = "mail to ann@example.org";
  event.attributes = {Str("to", "ann@example.org"), Str("kept", "yes")};
  span.events.push_back(event);
  base::SpanLink link;
  link.trace_id = Trace(3);
  link.span_id = SpanIdOf(4);
  link.attributes = {Str("from", "+44-20-7946-0958"), Str("link.kind", "follows")};
  span.links.push_back(link);
  span.status.code = base::StatusCode::kError;
  span.status.message = "bounce from bob@example.net";
  base::AnyValue array;
  array.type = base::AnyValue::Type::kArray;
  array.array_values = {base::AnyValue::String("a@b.de"), base::AnyValue::String("keep"),
                        base::AnyValue::String("cc c@d.de")};
  span.attributes.push_back({"recipients", array});
  base::AnyValue kvlist;
  kvlist.type = base::AnyValue::Type::kKvList;
  kvlist.kvlist_values = {Str("email", "z@z.de"), Str("city", "Berlin"),
                          Str("contact", "+49 171 1234567")};
  span.attributes.push_back({"customer", kvlist});
  base::TraceBatch batch =
      BatchOf(std::move(span), {Str("service.name", "mes"), Str("owner", "ops@example.com"),
                                Str("deploy.contact", "dial (415) 555-0100")});
  base::ScopeSpans& scope = batch.resource_spans[0].scope_spans[0];
  scope.scope.name = "lib";
  scope.scope.attributes = {Str("maintainer", "dev@example.com"), Str("scope.kept", "1")};

  EXPECT_EQ(scrubber->Scrub(batch), 15u);
  const base::ResourceSpans& rs = batch.resource_spans[0];
  ASSERT_EQ(rs.resource.attributes.size(), 2u);
  EXPECT_EQ(rs.resource.attributes[0].key, "service.name");
  EXPECT_EQ(rs.resource.attributes[1].value.string_value, "dial [phone]");
  ASSERT_EQ(rs.scope_spans[0].scope.attributes.size(), 1u);
  EXPECT_EQ(rs.scope_spans[0].scope.attributes[0].key, "scope.kept");
  const base::Span& s = rs.scope_spans[0].spans[0];
  EXPECT_EQ(s.name, "notify [email] at [phone]");
  ASSERT_EQ(s.attributes.size(), 4u);
  EXPECT_EQ(s.attributes[0].key, "order.id");
  EXPECT_EQ(s.attributes[1].value.string_value, "ring [phone] after 5");
  ASSERT_EQ(s.attributes[2].value.array_values.size(), 2u);
  EXPECT_EQ(s.attributes[2].value.array_values[0].string_value, "keep");
  EXPECT_EQ(s.attributes[2].value.array_values[1].string_value, "cc [email]");
  ASSERT_EQ(s.attributes[3].value.kvlist_values.size(), 1u);
  EXPECT_EQ(s.attributes[3].value.kvlist_values[0].key, "city");
  EXPECT_EQ(s.events[0].name, "mail to [email]");
  ASSERT_EQ(s.events[0].attributes.size(), 1u);
  EXPECT_EQ(s.events[0].attributes[0].key, "kept");
  ASSERT_EQ(s.links[0].attributes.size(), 1u);
  EXPECT_EQ(s.links[0].attributes[0].key, "link.kind");
  EXPECT_EQ(s.status.message, "bounce from [email]");
  EXPECT_EQ(Count(*scrubber, "email"), 10u);
  EXPECT_EQ(Count(*scrubber, "phone"), 5u);
}

TEST(PiiScrubberTest, SpansWithoutPiiAreLeftAlone) {
  auto scrubber = Defaults();
  base::Span span =
      MakeSpan("mes.approve", {Str("order.id", "ord-20261206-0001"), Str("price", "1234567.89"),
                               Str("at", "2026-12-06T12:49:53Z")});
  base::TraceBatch batch = BatchOf(span, {Str("service.name", "mes")});
  std::vector<SpanPosition> changed;
  EXPECT_EQ(scrubber->Scrub(batch, &changed), 0u);
  const base::Span& s = batch.resource_spans[0].scope_spans[0].spans[0];
  EXPECT_EQ(s.attributes, span.attributes);
  EXPECT_THAT(changed, IsEmpty());  // its received bytes stay usable
}

TEST(PiiScrubberTest, AChangedSpanOrResourceIsReported) {
  auto scrubber = Defaults();
  base::Span clean = MakeSpan("clean", {Str("k", "v")});
  base::Span dirty = MakeSpan("dirty", {Str("k", "a@b.de")});
  base::TraceBatch batch = BatchOf(clean);
  batch.resource_spans[0].scope_spans[0].spans.push_back(dirty);
  batch.resource_spans.push_back(BatchOf(clean, {Str("who", "+49 30 1234567")}).resource_spans[0]);
  std::vector<SpanPosition> changed;
  scrubber->Scrub(batch, &changed);
  // Not the clean span at (0, 0, 0): its received bytes stay usable.
  EXPECT_THAT(changed, ElementsAre(SpanPosition{0, 0, 1}, SpanPosition{1, 0, 0}));
}

TEST(PiiScrubberTest, MaskActionKeepsTheAttribute) {
  PiiScrubberOptions options;
  options.rules = DefaultPiiRules();
  options.rules[0].action = PiiAction::kMask;
  auto scrubber = PiiScrubber::Create(options);
  ASSERT_TRUE(scrubber.ok());
  base::TraceBatch batch =
      BatchOf(MakeSpan("s", {Str("to", "a@b.de"), Str("customer.email", "c@d.de")}));
  (*scrubber)->Scrub(batch);
  const base::Span& s = batch.resource_spans[0].scope_spans[0].spans[0];
  ASSERT_EQ(s.attributes.size(), 2u);
  EXPECT_EQ(s.attributes[0].value.string_value, "[email]");
  EXPECT_EQ(s.attributes[1].value.string_value, "[email]");
}

TEST(PiiScrubberTest, ConfiguredRulesAndDisabling) {
  PiiScrubberOptions options;
  options.rules = {Rule("iban", "", R"(\bDE\d{20}\b)"),
                   Rule("secret_keys", "(?i).*password.*", "")};
  auto scrubber = PiiScrubber::Create(options);
  ASSERT_TRUE(scrubber.ok()) << scrubber.status();
  base::TraceBatch batch = BatchOf(MakeSpan(
      "pay DE89370400440532013000",
      {Str("acct", "DE89370400440532013000"), Str("db.password", "x"), Str("to", "a@b.de")}));
  EXPECT_EQ((*scrubber)->Scrub(batch), 3u);
  const base::Span& s = batch.resource_spans[0].scope_spans[0].spans[0];
  EXPECT_EQ(s.name, "pay [iban]");
  ASSERT_EQ(s.attributes.size(), 1u);
  EXPECT_EQ(s.attributes[0].value.string_value, "a@b.de");  // the defaults were replaced

  options.enabled = false;
  auto off = PiiScrubber::Create(options);
  ASSERT_TRUE(off.ok());
  base::TraceBatch untouched = BatchOf(MakeSpan("pay DE89370400440532013000", {}));
  EXPECT_EQ((*off)->Scrub(untouched), 0u);
  EXPECT_EQ(untouched.resource_spans[0].scope_spans[0].spans[0].name, "pay DE89370400440532013000");
}

TEST(PiiScrubberTest, BadRulesAreRefusedByName) {
  PiiScrubberOptions bad_regex;
  bad_regex.rules = {Rule("broken", "", "(unclosed")};
  auto s = PiiScrubber::Create(bad_regex);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("'broken'"));
  EXPECT_THAT(s.status().message(), HasSubstr("value_pattern"));

  PiiScrubberOptions bad_key;
  bad_key.rules = {Rule("k", "[z-a]", "")};
  EXPECT_THAT(PiiScrubber::Create(bad_key).status().message(), HasSubstr("key_pattern"));
  PiiScrubberOptions matches_nothing;
  for (const char* pattern : {"x*", "\\b", "abc|", "^"}) {
    matches_nothing.rules = {Rule("empty", "", pattern)};
    EXPECT_THAT(PiiScrubber::Create(matches_nothing).status().message(),
                HasSubstr("matches the empty string"))
        << pattern;
  }
  PiiScrubberOptions empty;
  empty.rules = {Rule("nothing", "", "")};
  EXPECT_FALSE(PiiScrubber::Create(empty).ok());
  PiiScrubberOptions twice;
  twice.rules = {Rule("a", "", "x"), Rule("a", "", "y")};
  EXPECT_FALSE(PiiScrubber::Create(twice).ok());
}

TEST(PiiScrubberTest, CountsAddUpAcrossThreads) {
  auto scrubber = Defaults();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        base::TraceBatch batch =
            BatchOf(MakeSpan("s", {Str("to", "a@b.de"), Str("n", "+49 30 1234567")}));
        scrubber->Scrub(batch);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(Count(*scrubber, "email"), 2000u);
  EXPECT_EQ(Count(*scrubber, "phone"), 2000u);
}

}  // namespace
}  // namespace ordertrace::scrub
