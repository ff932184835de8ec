#pragma once
// file_cursor: a file read or written as a byte stream from an explicit
// offset that advances by what each operation transferred (coil::file's own
// read_some/write_some use the kernel's file position instead, for pipes and
// devices). The position is the cursor's, not the kernel's: two cursors on one
// file do not disturb each other.
#include <coroutine>
#include <cstdint>
#include <span>

#include "coil/fs/file.hpp"
#include "coil/rt/op.hpp"

namespace coil {

class file_cursor {
 public:
  // f must outlive the cursor and the operations started through it.
  explicit file_cursor(const file& f, uint64_t offset = 0) noexcept : file_(&f), offset_(offset) {}

  // One read or write at offset(); on success the offset advances by the
  // bytes transferred. One operation at a time per cursor.
  auto read_some(std::span<std::byte> buf) noexcept { return advancing(file_->read_at(buf, offset_)); }
  auto write_some(std::span<const std::byte> buf) noexcept { return advancing(file_->write_at(buf, offset_)); }
  auto write_some_v(std::span<const iovec> iov) noexcept { return advancing(file_->writev_at(iov, offset_)); }

  uint64_t offset() const noexcept { return offset_; }
  void seek(uint64_t offset) noexcept { offset_ = offset; }
  const file& underlying() const noexcept { return *file_; }

 private:
  // An op_awaiter whose result moves the cursor.
  template <class Op>
  class [[nodiscard]] advance_op {
   public:
    advance_op(op_awaiter<Op> inner, uint64_t* offset) noexcept : inner_(std::move(inner)), offset_(offset) {}
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      return inner_.await_suspend(h);
    }
    result<size_t> await_resume() noexcept {
      result<size_t> r = inner_.await_resume();
      if (r) *offset_ += *r;
      return r;
    }

   private:
    op_awaiter<Op> inner_;
    uint64_t* offset_;
  };
  template <class Op>
  advance_op<Op> advancing(op_awaiter<Op> op) noexcept {
    return advance_op<Op>(std::move(op), &offset_);
  }

  const file* file_;
  uint64_t offset_;
};

}  // namespace coil
