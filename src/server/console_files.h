// The console's files (web/ in the repository): index.html, the one page every console route
// answers with, and everything under web/assets/, served at /assets/<path>. By default the copy
// built into the binary (cmake/embed_console.cmake); for console development, a folder read
// on every request (`console.dir`, --console-dir).
//
// Thread-safe (immutable after construction).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ordertrace::server {

struct ConsoleFile {
  std::string content;
  std::string content_type;  // from the file's extension
};

class ConsoleFiles {
 public:
  // The files built into the binary; empty when the build found no web/index.html.
  static std::shared_ptr<const ConsoleFiles> Embedded();
  // Reads `dir`/index.html and `dir`/assets/** on every request; refused when `dir` holds no
  // index.html.
  static absl::StatusOr<std::shared_ptr<const ConsoleFiles>> FromDirectory(const std::string& dir);

  // `relative_path` as under web/ ("index.html", "assets/app.js"). nullopt when there is no such
  // file, or the path is not a plain one: only letters, digits and `._-/`, no segment that
  // starts with a dot (so neither `..` nor hidden files), no empty segment.
  std::optional<ConsoleFile> Read(std::string_view relative_path) const;

  bool empty() const { return dir_.empty() && embedded_.empty(); }
  // Where the files come from, for the start-up line: "built in" or the folder.
  std::string Origin() const { return dir_.empty() ? "built in" : dir_; }

 private:
  ConsoleFiles() = default;

  std::string dir_;  // empty: embedded_
  std::vector<std::pair<std::string_view, std::string_view>> embedded_;
};

// Whether `relative_path` is a plain path as ConsoleFiles::Read describes.
bool IsPlainAssetPath(std::string_view relative_path);

// The Content-Type for a file name's extension (application/octet-stream when unknown).
std::string_view ContentTypeForPath(std::string_view path);

// The files cmake/embed_console.cmake wrote into the build: (path under web/, content).
std::vector<std::pair<std::string_view, std::string_view>> EmbeddedConsoleFiles();

}  // namespace ordertrace::server
