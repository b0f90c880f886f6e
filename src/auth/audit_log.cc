#include "auth/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace ordertrace::auth {
namespace {

// Opened with open(2) so that a new file is created 0600 whatever the umask says: the log
// names who read which order.
std::FILE* OpenPrivate(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  std::FILE* file = ::fdopen(fd, "a");
  if (file == nullptr) ::close(fd);
  return file;
}

std::string Rfc3339Millis(uint64_t unix_nano) {
  const time_t seconds = static_cast<time_t>(unix_nano / 1'000'000'000ULL);
  const unsigned millis = static_cast<unsigned>((unix_nano / 1'000'000ULL) % 1000);
  std::tm tm = {};
  gmtime_r(&seconds, &tm);
  char out[40];
  std::snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("audit.file is empty");
  if (options.keep_files == 0) options.keep_files = 1;
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::FILE* file = OpenPrivate(options.path);
  if (file == nullptr) {
    return absl::FailedPreconditionError("cannot open the audit log " + options.path + ": " +
                                         std::strerror(errno));
  }
  const size_t size = std::filesystem::file_size(options.path, ec);
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(options), file, ec ? 0 : size));
}

AuditLog::AuditLog(AuditLogOptions options, std::FILE* file, size_t size)
    : options_(std::move(options)), file_(file), size_(size) {}

AuditLog::~AuditLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void AuditLog::Record(AuditEntry entry) {
  if (options_.redact) options_.redact(entry.target);
  nlohmann::json line = {{"time", Rfc3339Millis(entry.at_unix_nano)},
                         {"token", entry.token_name},
                         {"role", entry.role},
                         {"method", entry.method},
                         {"target", entry.target},
                         {"status", entry.status}};
  if (!entry.partner_id.empty()) line["partner_id"] = entry.partner_id;
  if (!entry.order_id.empty()) line["order_id"] = entry.order_id;
  if (!entry.trace_id.empty()) line["trace_id"] = entry.trace_id;
  if (!entry.refusal.empty()) line["refused"] = entry.refusal;
  // Targets come from clients and need not be UTF-8.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');

  std::lock_guard<std::mutex> lock(mu_);
  if (size_ > 0 && size_ + text.size() > options_.max_bytes) RotateLocked();
  if (file_ == nullptr || std::fwrite(text.data(), 1, text.size(), file_) != text.size() ||
      std::fflush(file_) != 0) {
    if (stats_.write_errors++ == 0) {
      spdlog::error("audit log: cannot write to {}: {}", options_.path, std::strerror(errno));
    }
    return;
  }
  size_ += text.size();
  ++stats_.lines;
}

void AuditLog::RotateLocked() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  const std::string& base = options_.path;
  std::filesystem::remove(base + "." + std::to_string(options_.keep_files), ec);
  for (size_t i = options_.keep_files; i > 1; --i) {
    std::filesystem::rename(base + "." + std::to_string(i - 1), base + "." + std::to_string(i), ec);
  }
  std::filesystem::rename(base, base + ".1", ec);
  file_ = OpenPrivate(base);
  size_ = 0;
  ++stats_.rotations;
}

AuditLogStats AuditLog::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace ordertrace::auth
