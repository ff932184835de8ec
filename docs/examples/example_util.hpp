#pragma once
// Helpers for the guide's example programs, kept out of the guide: a failure
// count that becomes main's exit code, and a temporary directory.
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>

namespace example {

inline std::atomic<int> failures{0};

// Reports a failed expectation; any failure makes exit_code() 1.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "%s: %s failed\n", program_invocation_short_name, what);
    ++failures;
  }
}

inline int exit_code() { return failures.load() == 0 ? 0 : 1; }

// A fresh directory under /tmp, removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = "/tmp/coil-doc-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace example
