// An HTTP error answer in TEI's form: status + {"error": message, "error_type": type}.
#pragma once
#include <stdexcept>
#include <string>

namespace moekit::serve {

class RequestError : public std::runtime_error {
 public:
  // type: TEI's error_type ("validation", "tokenizer", "overloaded", "unhealthy", "backend").
  RequestError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

// {"error": message, "error_type": type} as text.
std::string error_body(const std::string& message, const std::string& type);

}  // namespace moekit::serve
