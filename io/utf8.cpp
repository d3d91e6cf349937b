#include "io/utf8.h"

#include <utf8proc.h>

namespace moekit::io {

long invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t pos = 0, n = static_cast<utf8proc_ssize_t>(s.size());
  while (pos < n) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t len = utf8proc_iterate(p + pos, n - pos, &cp);
    if (len <= 0) return static_cast<long>(pos);
    pos += len;
  }
  return -1;
}

}  // namespace moekit::io
