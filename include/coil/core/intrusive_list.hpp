#pragma once
// Circular doubly linked intrusive list. A hook unlinks itself when destroyed,
// so an object destroyed while queued (a task frame torn down while its
// completion waits to be resumed) can never leave a dangling pointer behind.
#include <cstddef>

namespace coil {

class list_hook {
 public:
  list_hook() noexcept = default;
  list_hook(const list_hook&) = delete;
  list_hook& operator=(const list_hook&) = delete;
  ~list_hook() { unlink(); }

  bool linked() const noexcept { return next_ != nullptr; }
  void unlink() noexcept {
    if (next_ == nullptr) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  template <class T>
  friend class intrusive_list;
  list_hook* prev_ = nullptr;
  list_hook* next_ = nullptr;
};

// T must derive from list_hook. The list does not own its elements.
template <class T>
class intrusive_list {
 public:
  intrusive_list() noexcept { head_.prev_ = head_.next_ = &head_; }
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;
  ~intrusive_list() { clear(); }

  bool empty() const noexcept { return head_.next_ == &head_; }

  void push_back(T& item) noexcept {
    list_hook& h = item;
    h.prev_ = head_.prev_;
    h.next_ = &head_;
    head_.prev_->next_ = &h;
    head_.prev_ = &h;
  }

  T* front() noexcept { return empty() ? nullptr : static_cast<T*>(head_.next_); }

  // Removes item, which must be in this list (unlink() without its check).
  void erase(T& item) noexcept {
    list_hook& h = item;
    h.prev_->next_ = h.next_;
    h.next_->prev_ = h.prev_;
    h.prev_ = h.next_ = nullptr;
  }

  T* pop_front() noexcept {
    if (empty()) return nullptr;
    list_hook* h = head_.next_;
    h->unlink();
    return static_cast<T*>(h);
  }

  // Moves all of other's elements to the back of this list.
  void splice_back(intrusive_list& other) noexcept {
    if (other.empty()) return;
    list_hook* first = other.head_.next_;
    list_hook* last = other.head_.prev_;
    other.head_.prev_ = other.head_.next_ = &other.head_;
    first->prev_ = head_.prev_;
    last->next_ = &head_;
    head_.prev_->next_ = first;
    head_.prev_ = last;
  }

  void clear() noexcept {
    while (pop_front() != nullptr) {
    }
  }

  // Calls f(T&) for each element; f must not unlink elements other than its own.
  template <class F>
  void for_each(F&& f) noexcept {
    for (list_hook* h = head_.next_; h != &head_;) {
      list_hook* next = h->next_;
      f(static_cast<T&>(*h));
      h = next;
    }
  }

  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const list_hook* h = head_.next_; h != &head_; h = h->next_) ++n;
    return n;
  }

 private:
  list_hook head_;
};

}  // namespace coil
