#include "coil/rt/blocking.hpp"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace coil {
namespace {

std::atomic<unsigned> max_threads{0};  // 0: not fixed yet
std::atomic<bool> pool_started{false};

unsigned default_threads() noexcept {
  if (const char* e = std::getenv("COIL_BLOCKING_THREADS")) {
    const long v = std::strtol(e, nullptr, 10);
    if (v > 0 && v <= 1024) return static_cast<unsigned>(v);
  }
  return 16;
}

// Threads start on demand (a job queued while none is idle), up to the
// bound, and live until process exit.
class pool {
 public:
  explicit pool(unsigned bound) : bound_(bound) {}
  ~pool() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // fork() child: only the forking thread exists, yet the pool still counts
  // its parent's threads (idle ones would be trusted to take jobs, so a job
  // would never run) and a lock or wait state may belong to a thread that is
  // gone. Fresh, empty state; the dead threads' handles and the parent's
  // queued jobs are leaked on purpose (joining or freeing them is undefined).
  void reset_in_child() noexcept {
    new (&mu_) std::mutex;
    new (&cv_) std::condition_variable;
    new (&threads_) std::vector<std::thread>;
    head_ = tail_ = nullptr;
    queued_ = idle_ = 0;
    quit_ = false;
  }

  void submit(detail::blocking_job& j) {
    bool start = false;
    {
      std::lock_guard lock(mu_);
      j.next = nullptr;
      if (tail_ != nullptr) {
        tail_->next = &j;
      } else {
        head_ = &j;
      }
      tail_ = &j;
      ++queued_;
      if (queued_ > idle_ && threads_.size() < bound_) {
        start = true;
        // Pool threads take no signals: they belong to the process's own threads.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        threads_.emplace_back([this] { loop(); });
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
      }
    }
    if (!start) cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [&] { return quit_ || head_ != nullptr; });
      --idle_;
      if (head_ == nullptr) return;  // quitting with nothing queued
      detail::blocking_job* j = head_;
      head_ = j->next;
      if (head_ == nullptr) tail_ = nullptr;
      --queued_;
      lock.unlock();
      j->work(*j);  // may free j
      lock.lock();
    }
  }

  const unsigned bound_;
  std::mutex mu_;
  std::condition_variable cv_;
  detail::blocking_job* head_ = nullptr;
  detail::blocking_job* tail_ = nullptr;
  std::size_t queued_ = 0;
  std::size_t idle_ = 0;
  bool quit_ = false;
  std::vector<std::thread> threads_;
};

pool* started_pool = nullptr;  // for the fork handler: set once the pool exists

void reset_pool_in_child() noexcept {
  if (started_pool != nullptr) started_pool->reset_in_child();
}

pool& the_pool() {
  pool_started.store(true);
  unsigned expect = 0;
  max_threads.compare_exchange_strong(expect, default_threads());
  static pool p(max_threads.load());
  static const bool registered = [] {
    started_pool = &p;
    return pthread_atfork(nullptr, nullptr, &reset_pool_in_child) == 0;
  }();
  (void)registered;
  return p;
}

}  // namespace

bool set_blocking_pool_threads(unsigned n) noexcept {
  if (n == 0 || pool_started.load()) return false;
  max_threads.store(n);
  return true;
}

unsigned blocking_pool_threads() noexcept {
  const unsigned n = max_threads.load();
  return n != 0 ? n : default_threads();
}

void detail::blocking_submit(blocking_job& j) noexcept { the_pool().submit(j); }

}  // namespace coil
