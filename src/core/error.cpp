#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "coil/core/assert.hpp"
#include "coil/core/error.hpp"

namespace coil {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coil"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::no_runtime: return "no coil runtime on this thread";
      case errc::runtime_closed: return "the runtime is shutting down";
      case errc::wrong_thread: return "runtime used from a thread that does not own it";
      case errc::unsupported_op: return "operation not supported by this kernel";
      case errc::unexpected_eof: return "unexpected end of file";
      case errc::write_zero: return "write made no progress";
      case errc::misaligned: return "buffer, offset or length not aligned for O_DIRECT";
      case errc::deadlock: return "task waits, but nothing can ever wake it";
      case errc::uring_unavailable: return "io_uring is unavailable (blocked, disabled or too old)";
      case errc::unmapped: return "address not mapped in this I/O space";
      case errc::in_runtime: return "blocking call on a runtime thread (would deadlock); co_await the async form";
      case errc::end_of_stream: return "end of stream";
      case errc::too_long: return "line or frame longer than its limit or the buffer";
    }
    return "unknown coil error";
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<errc>(ev)) {
      case errc::unsupported_op: return std::errc::operation_not_supported;
      case errc::misaligned: return std::errc::invalid_argument;
      default: return {ev, *this};
    }
  }
};

}  // namespace

const std::error_category& coil_category() noexcept {
  static const category c;
  return c;
}

namespace detail {
void assert_fail(const char* expr, const char* msg, const char* file, int line) noexcept {
  std::fprintf(stderr, "coil: %s\n  (%s at %s:%d)\n", msg, expr, file, line);
  std::fflush(stderr);
  std::abort();
}

void exception_escaped(const char* what, const char* task_name) noexcept {
  std::fprintf(stderr, "coil: an exception escaped %s%s%s: %s; terminating\n", task_name ? "task \"" : "a task",
               task_name ? task_name : "", task_name ? "\"" : " (unnamed: coil::set_task_name names it)",
               what ? what : "not a std::exception, no description");
  std::fflush(stderr);
  std::terminate();
}
}  // namespace detail

}  // namespace coil
