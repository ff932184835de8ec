#pragma once
// kv_server's wire format: RESP2 requests (multibulk "*N\r\n$L\r\n...", or an
// inline line split like redis-cli input) parsed incrementally from whatever
// bytes have arrived, and the reply encoders. Protocol errors carry
// redis-server's text, so a client sees the same reply from either server.
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

// Redis's string2ll: an optional '-', then digits with no leading zero (a
// lone "0" aside), no sign '+', no spaces, within long long.
inline bool parse_ll(std::string_view s, long long& out) {
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") {
    out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative && ++i == s.size()) return false;
  if (s[i] < '1' || s[i] > '9') return false;
  unsigned long long v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const unsigned digit = static_cast<unsigned>(s[i] - '0');
    if (v > (ULLONG_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  if (negative) {
    if (v > static_cast<unsigned long long>(LLONG_MAX) + 1) return false;
    out = v == static_cast<unsigned long long>(LLONG_MAX) + 1 ? LLONG_MIN : -static_cast<long long>(v);
    return true;
  }
  if (v > static_cast<unsigned long long>(LLONG_MAX)) return false;
  out = static_cast<long long>(v);
  return true;
}

// --- replies -------------------------------------------------------------------

inline void append_int(std::string& out, char prefix, long long v) {
  char buf[24];
  buf[0] = prefix;
  char* end = std::to_chars(buf + 1, buf + sizeof buf - 2, v).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(buf, static_cast<size_t>(end - buf));
}
inline void reply_int(std::string& out, long long v) { append_int(out, ':', v); }
inline void reply_bulk(std::string& out, std::string_view v) {
  append_int(out, '$', static_cast<long long>(v.size()));
  out.append(v);
  out.append("\r\n");
}
inline void reply_null(std::string& out) { out.append("$-1\r\n"); }
inline void reply_array(std::string& out, size_t n) { append_int(out, '*', static_cast<long long>(n)); }
inline void reply_ok(std::string& out) { out.append("+OK\r\n"); }
// An error line: "-" + text, with CR and LF turned into spaces as Redis does
// (the text may quote a client's argument).
inline void reply_error(std::string& out, std::string_view text) {
  out.push_back('-');
  for (char c : text) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  out.append("\r\n");
}

// --- requests ------------------------------------------------------------------

struct limits {
  size_t max_bulk = 64u << 20;      // one argument
  size_t max_request = 256u << 20;  // all arguments of one request
  size_t max_inline = 64u << 10;    // an inline request or a "*N"/"$L" header line
  long long max_args = 1 << 20;     // arguments of one request
};

// Splits an inline request the way redis-cli input is split (sdssplitargs):
// spaces separate arguments; "double quotes" take \n \r \t \b \a \\ \" and
// \xHH; 'single quotes' take \'; a closing quote must end the argument.
// False on unbalanced quotes.
inline bool split_inline(std::string_view line, std::vector<std::string>& args, size_t& argc) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  auto hexval = [](char c) {
    return c <= '9' ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
  };
  argc = 0;
  size_t i = 0;
  for (;;) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i == line.size()) return true;
    if (args.size() <= argc) args.emplace_back();
    std::string& cur = args[argc];
    cur.clear();
    bool dq = false, sq = false;
    for (;;) {
      if (dq) {
        if (i == line.size()) return false;
        if (line[i] == '\\' && i + 3 < line.size() && line[i + 1] == 'x' && hex(line[i + 2]) && hex(line[i + 3])) {
          cur.push_back(static_cast<char>(hexval(line[i + 2]) * 16 + hexval(line[i + 3])));
          i += 4;
          continue;
        }
        if (line[i] == '\\' && i + 1 < line.size()) {
          const char c = line[i + 1];
          cur.push_back(c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c == 'b' ? '\b' : c == 'a' ? '\a' : c);
          i += 2;
          continue;
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && !std::isspace(static_cast<unsigned char>(line[i + 1]))) return false;
          ++i;
          break;
        }
        cur.push_back(line[i++]);
      } else if (sq) {
        if (i == line.size()) return false;
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '\'') {
          cur.push_back('\'');
          i += 2;
          continue;
        }
        if (line[i] == '\'') {
          if (i + 1 < line.size() && !std::isspace(static_cast<unsigned char>(line[i + 1]))) return false;
          ++i;
          break;
        }
        cur.push_back(line[i++]);
      } else {
        if (i == line.size() || std::isspace(static_cast<unsigned char>(line[i]))) break;
        if (line[i] == '"') {
          dq = true;
        } else if (line[i] == '\'') {
          sq = true;
        } else {
          cur.push_back(line[i]);
        }
        ++i;
      }
    }
    ++argc;
  }
}

// Parses requests from the bytes a connection receives, a piece at a time:
// feed() takes what it can of the buffered bytes (the caller drops `used` of
// them) and says whether a whole request is ready in args(). Arguments are
// copied out (a value larger than the read buffer streams through it), and
// every size is bounded by limits before anything is allocated for it.
class request_parser {
 public:
  enum class status { ready, more, error };

  explicit request_parser(const limits& lim) : lim_(&lim) {}

  status feed(std::string_view buf, size_t& used) {
    used = 0;
    for (;;) {
      const std::string_view rest = buf.substr(used);
      switch (state_) {
        case state::idle: {
          if (rest.empty()) return status::more;
          if (rest[0] != '*') {
            const status s = inline_request(rest, used);
            if (s == status::ready && argc_ == 0) break;  // an empty line answers nothing
            return s;
          }
          const size_t cr = rest.find('\r');
          if (cr == std::string_view::npos) {
            return rest.size() > lim_->max_inline ? fail("Protocol error: too big mbulk count string") : status::more;
          }
          if (cr + 2 > rest.size()) return status::more;
          long long n = 0;
          if (!parse_ll(rest.substr(1, cr - 1), n) || n > INT_MAX || n > lim_->max_args) {
            return fail("Protocol error: invalid multibulk length");
          }
          used += cr + 2;
          if (n <= 0) break;  // an empty request: nothing to answer
          want_ = static_cast<size_t>(n);
          argc_ = 0;
          total_ = 0;
          state_ = state::header;
          break;
        }
        case state::header: {
          const size_t cr = rest.find('\r');
          if (cr == std::string_view::npos) {
            return rest.size() > lim_->max_inline ? fail("Protocol error: too big bulk count string") : status::more;
          }
          if (cr + 2 > rest.size()) return status::more;
          if (rest[0] != '$') {
            expected_ = "Protocol error: expected '$', got ' '";
            expected_[expected_.size() - 2] = rest[0];
            return fail(expected_);
          }
          long long len = 0;
          if (!parse_ll(rest.substr(1, cr - 1), len) || len < 0 || static_cast<size_t>(len) > lim_->max_bulk) {
            return fail("Protocol error: invalid bulk length");
          }
          total_ += static_cast<size_t>(len);
          if (total_ > lim_->max_request) return fail("Protocol error: request too large");
          used += cr + 2;
          if (args_.size() <= argc_) args_.emplace_back();
          args_[argc_].clear();
          if (len > (64 << 10)) args_[argc_].reserve(static_cast<size_t>(len));
          left_ = static_cast<size_t>(len) + 2;  // the value, then its "\r\n"
          state_ = state::body;
          break;
        }
        case state::body: {
          // Like Redis, the two bytes after the value are skipped unchecked.
          const size_t value_left = left_ > 2 ? left_ - 2 : 0;
          const size_t take = std::min(value_left, rest.size());
          args_[argc_].append(rest.substr(0, take));
          used += take;
          left_ -= take;
          if (left_ > 2 || rest.size() - take < 2) return status::more;
          used += 2;
          left_ = 0;
          if (++argc_ == want_) {
            state_ = state::idle;
            return status::ready;
          }
          state_ = state::header;
          break;
        }
      }
    }
  }

  // The request feed() found ready (valid until the next feed()).
  std::string* args() noexcept { return args_.data(); }
  size_t argc() const noexcept { return argc_; }
  // The protocol error feed() found: the text of the error reply.
  std::string_view error() const noexcept { return error_; }

  // After a request is served: a connection keeps no oversized argument.
  void trim() {
    if (args_.size() > 1024) {
      args_.resize(1024);
      args_.shrink_to_fit();
    }
    for (std::string& a : args_) {
      if (a.capacity() > (1u << 20)) std::string().swap(a);
    }
  }

 private:
  enum class state { idle, header, body };

  status fail(std::string_view why) {
    error_ = why;
    return status::error;
  }

  status inline_request(std::string_view rest, size_t& used) {
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      return rest.size() > lim_->max_inline ? fail("Protocol error: too big inline request") : status::more;
    }
    std::string_view line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!split_inline(line, args_, argc_)) return fail("Protocol error: unbalanced quotes in request");
    used += nl + 1;
    return status::ready;
  }

  const limits* lim_;
  state state_ = state::idle;
  std::vector<std::string> args_;
  size_t argc_ = 0;
  size_t want_ = 0;
  size_t left_ = 0;
  size_t total_ = 0;
  std::string_view error_;
  std::string expected_;
};

}  // namespace kv
