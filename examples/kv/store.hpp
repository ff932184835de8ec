#pragma once
// One core's keys: a hash map of strings with optional expiry times (Unix
// milliseconds, as Redis keeps them). Expired keys go lazily, when a command
// touches them, and in bounded sweeps (sweep()), so a key nobody reads again
// still leaves.
#include <time.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kv {

inline int64_t unix_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

struct entry {
  std::string value;
  int64_t expire_at_ms = 0;  // 0: no expiry
};

struct key_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class store {
 public:
  using map_type = std::unordered_map<std::string, entry, key_hash, std::equal_to<>>;

  // The live entry for key, or nullptr (an expired one is deleted here).
  entry* find(std::string_view key) {
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    if (expired(it->second)) {
      erase(it);
      return nullptr;
    }
    return &it->second;
  }

  // The entry for key, made empty when there was none (created says which).
  entry& upsert(std::string_view key, bool& created) {
    auto it = map_.find(key);
    if (it != map_.end() && expired(it->second)) {
      erase(it);
      it = map_.end();
    }
    created = it == map_.end();
    if (created) it = map_.try_emplace(std::string(key)).first;
    return it->second;
  }

  bool erase(std::string_view key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    const bool live = !expired(it->second);
    erase(it);
    return live;
  }

  // Sets or clears (0) an entry's expiry, keeping the count of volatile keys.
  void set_expiry(entry& e, int64_t at_ms) noexcept {
    volatile_ += static_cast<size_t>(at_ms != 0) - static_cast<size_t>(e.expire_at_ms != 0);
    e.expire_at_ms = at_ms;
  }

  // Like Redis's DBSIZE: keys not yet collected count, expired or not.
  size_t size() const noexcept { return map_.size(); }
  void clear() noexcept {
    map_.clear();
    volatile_ = 0;
    cursor_ = 0;
  }

  // Deletes the expired keys among up to `buckets` hash buckets, resuming
  // where the last sweep stopped: bounded work per call, every key visited
  // within bucket_count / buckets calls. Gives the number deleted.
  size_t sweep(size_t buckets) {
    if (volatile_ == 0 || map_.empty()) return 0;
    const int64_t now = unix_ms();
    const size_t n = map_.bucket_count();
    doomed_.clear();
    for (size_t i = 0; i < buckets && i < n; ++i) {
      if (cursor_ >= n) cursor_ = 0;
      for (auto it = map_.begin(cursor_); it != map_.end(cursor_); ++it) {
        if (it->second.expire_at_ms != 0 && now > it->second.expire_at_ms) doomed_.push_back(it->first);
      }
      ++cursor_;
    }
    for (const std::string& k : doomed_) erase(k);
    return doomed_.size();
  }

 private:
  // Redis's rule: a key expires once the clock is past its time.
  static bool expired(const entry& e) noexcept { return e.expire_at_ms != 0 && unix_ms() > e.expire_at_ms; }
  void erase(map_type::iterator it) {
    if (it->second.expire_at_ms != 0) --volatile_;
    map_.erase(it);
  }

  map_type map_;
  size_t volatile_ = 0;  // entries with an expiry
  size_t cursor_ = 0;    // the next bucket sweep() visits
  std::vector<std::string> doomed_;
};

}  // namespace kv
