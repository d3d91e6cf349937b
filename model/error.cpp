#include "model/error.h"

namespace moekit {

static std::string join(const std::filesystem::path& path, const std::string& what) {
  return path.empty() ? what : path.string() + ": " + what;
}

Error::Error(const std::filesystem::path& path, const std::string& what)
    : std::runtime_error(join(path, what)), path_(path) {}

void fail(const std::filesystem::path& path, const std::string& msg) { throw Error(path, msg); }

}  // namespace moekit
