#include "services/common/service_db.h"

#include "absl/strings/str_cat.h"
#include "services/common/message_consumer.h"
#include "services/common/outbox.h"

namespace ordertrace::services {

absl::StatusOr<std::unique_ptr<ServiceDb>> ServiceDb::Open(const std::string& path,
                                                           std::string_view schema_sql) {
  absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path);
  if (!db.ok()) return db.status();
  for (std::string_view schema : {Outbox::kSchema, MessageConsumer::kSchema, schema_sql}) {
    absl::Status status = (*db)->ExecScript(schema);
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("cannot set up database ", path, ": ", status.message()));
    }
  }
  return std::unique_ptr<ServiceDb>(new ServiceDb(*std::move(db)));
}

}  // namespace ordertrace::services
