#include "server/console_files.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace ordertrace::server {
namespace {

// Console files are small; a larger one is a mistake (or not ours), never read into memory.
constexpr off_t kMaxFileBytes = 8 * 1024 * 1024;

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::optional<std::string> ReadRegularFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxFileBytes) {
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

bool IsPlainAssetPath(std::string_view path) {
  if (path.empty() || path.size() > 256) return false;
  bool segment_start = true;
  for (char c : path) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || c == '/';
    if (!plain) return false;
    if (segment_start && (c == '.' || c == '/')) return false;
    segment_start = c == '/';
  }
  return !segment_start;  // no trailing slash
}

std::string_view ContentTypeForPath(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [extension, type] : kTypes) {
    if (EndsWith(path, extension)) return type;
  }
  return "application/octet-stream";
}

std::shared_ptr<const ConsoleFiles> ConsoleFiles::Embedded() {
  static const std::shared_ptr<const ConsoleFiles> files = [] {
    auto embedded = std::shared_ptr<ConsoleFiles>(new ConsoleFiles());
    embedded->embedded_ = EmbeddedConsoleFiles();
    return embedded;
  }();
  return files;
}

absl::StatusOr<std::shared_ptr<const ConsoleFiles>> ConsoleFiles::FromDirectory(
    const std::string& dir) {
  std::string folder = dir;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  struct stat st {};
  if (folder.empty() || stat((folder + "/index.html").c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("console.dir '" + dir +
                                      "' holds no index.html (it should be the repository's web/)");
  }
  auto files = std::shared_ptr<ConsoleFiles>(new ConsoleFiles());
  files->dir_ = std::move(folder);
  return std::shared_ptr<const ConsoleFiles>(std::move(files));
}

std::optional<ConsoleFile> ConsoleFiles::Read(std::string_view relative_path) const {
  if (!IsPlainAssetPath(relative_path)) return std::nullopt;
  const std::string type(ContentTypeForPath(relative_path));
  if (!dir_.empty()) {
    std::optional<std::string> content = ReadRegularFile(dir_ + "/" + std::string(relative_path));
    if (!content) return std::nullopt;
    return ConsoleFile{std::move(*content), type};
  }
  for (const auto& [path, content] : embedded_) {
    if (path == relative_path) return ConsoleFile{std::string(content), type};
  }
  return std::nullopt;
}

}  // namespace ordertrace::server
