#pragma once
// file_server's HTTP pieces that need no I/O: the head parser over a
// reader's buffer (try_parse), the request target turned into a path
// relative to the root, Range and If-Modified-Since, dates, content types
// and status lines. Everything here works on bounded input (the head is at
// most max_head bytes) and never throws on bad input: it reports a status
// instead.
#include <strings.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace file_server {

constexpr size_t max_head = 16 << 10;         // request line and headers: 431 past this
constexpr size_t max_request_line = 8 << 10;  // 414 past this

inline bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

inline std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// The statuses the server sends.
enum class status : int {
  ok = 200,
  partial = 206,
  not_modified = 304,
  bad_request = 400,
  forbidden = 403,
  not_found = 404,
  method_not_allowed = 405,
  request_timeout = 408,
  uri_too_long = 414,
  range_not_satisfiable = 416,
  header_too_large = 431,
  internal_error = 500,
  version_not_supported = 505,
};

inline std::string_view reason(status s) {
  switch (s) {
    case status::ok: return "OK";
    case status::partial: return "Partial Content";
    case status::not_modified: return "Not Modified";
    case status::bad_request: return "Bad Request";
    case status::forbidden: return "Forbidden";
    case status::not_found: return "Not Found";
    case status::method_not_allowed: return "Method Not Allowed";
    case status::request_timeout: return "Request Timeout";
    case status::uri_too_long: return "URI Too Long";
    case status::range_not_satisfiable: return "Range Not Satisfiable";
    case status::header_too_large: return "Request Header Fields Too Large";
    case status::internal_error: return "Internal Server Error";
    case status::version_not_supported: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

// What the server keeps of a request head (copies: the reader's buffer
// moves on to the next request).
struct request {
  bool head = false;      // HEAD rather than GET
  bool http10 = false;    // HTTP/1.0: close unless keep-alive was asked for
  bool close = false;     // the connection ends after the answer
  bool has_body = false;  // Content-Length > 0 or Transfer-Encoding: answered, then closed
  std::string path;       // relative to the root, normalized; "" is the root itself
  std::string range;      // the Range value, if any
  std::string if_modified_since;
};

// Percent-decodes target's path (the query dropped), refuses what has no
// business in a file name (NUL, backslash, an encoded slash, control bytes)
// and resolves "." and ".." segments; a ".." above the root is a 400. The
// result has no leading slash, no empty, "." or ".." segment.
inline std::optional<std::string> normalize_target(std::string_view target, status& why) {
  why = status::bad_request;
  if (target.empty() || target.front() != '/') return std::nullopt;  // origin-form only
  if (const size_t q = target.find_first_of("?#"); q != std::string_view::npos) target = target.substr(0, q);
  std::string out;
  std::string segment;
  auto end_segment = [&]() -> bool {
    if (segment.empty() || segment == ".") {
    } else if (segment == "..") {
      if (out.empty()) return false;  // above the root
      const size_t slash = out.rfind('/');
      out.resize(slash == std::string::npos ? 0 : slash);
    } else {
      if (!out.empty()) out += '/';
      out += segment;
    }
    segment.clear();
    return true;
  };
  for (size_t i = 1; i < target.size(); ++i) {
    char c = target[i];
    if (c == '/') {
      if (!end_segment()) return std::nullopt;
      continue;
    }
    if (c == '%') {
      if (i + 2 >= target.size()) return std::nullopt;
      uint8_t v = 0;
      const auto [p, ec] = std::from_chars(target.data() + i + 1, target.data() + i + 3, v, 16);
      if (ec != std::errc() || p != target.data() + i + 3) return std::nullopt;
      c = static_cast<char>(v);
      i += 2;
      // An encoded slash would name a different path than the one the
      // client's segments show: refused like nginx's merge_slashes off.
      if (c == '/') {
        why = status::not_found;
        return std::nullopt;
      }
    }
    if (c == '\0' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
    segment += c;
    if (segment.size() > 255) {
      why = status::uri_too_long;
      return std::nullopt;
    }
  }
  if (!end_segment()) return std::nullopt;
  return out;
}

// The request line: METHOD SP TARGET SP HTTP/1.x.
inline bool parse_request_line(std::string_view line, request& r, status& why, std::string_view& target) {
  why = status::bad_request;
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  const std::string_view method = line.substr(0, sp1);
  target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (target.empty() || target.find(' ') != std::string_view::npos) return false;
  if (version == "HTTP/1.1") {
    r.http10 = false;
  } else if (version == "HTTP/1.0") {
    r.http10 = true;
  } else if (version.size() == 8 && version.starts_with("HTTP/") && version[6] == '.') {
    why = status::version_not_supported;
    return false;
  } else {
    return false;
  }
  if (method == "GET") {
    r.head = false;
  } else if (method == "HEAD") {
    r.head = true;
  } else {
    const bool token = std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    why = token ? status::method_not_allowed : status::bad_request;
    return false;
  }
  return true;
}

// One header line into r; false for a malformed line or value.
inline bool parse_header(std::string_view line, request& r, bool& keep_alive, bool& host) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view name = line.substr(0, colon);
  if (name.find_first_of(" \t") != std::string_view::npos) return false;  // also obs-fold
  const std::string_view value = trim(line.substr(colon + 1));
  if (equals_nocase(name, "Host")) {
    if (host) return false;  // two Hosts
    host = true;
  } else if (equals_nocase(name, "Connection")) {
    // A list: "keep-alive, Upgrade" and the like.
    for (size_t pos = 0; pos <= value.size();) {
      size_t comma = value.find(',', pos);
      if (comma == std::string_view::npos) comma = value.size();
      const std::string_view token = trim(value.substr(pos, comma - pos));
      if (equals_nocase(token, "close")) r.close = true;
      if (equals_nocase(token, "keep-alive")) keep_alive = true;
      pos = comma + 1;
    }
  } else if (equals_nocase(name, "Content-Length")) {
    uint64_t n = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size()) return false;
    if (n > 0) r.has_body = true;
  } else if (equals_nocase(name, "Transfer-Encoding")) {
    r.has_body = true;
  } else if (equals_nocase(name, "Range")) {
    if (!r.range.empty()) return false;
    r.range.assign(value);
  } else if (equals_nocase(name, "If-Modified-Since")) {
    r.if_modified_since.assign(value);
  }
  return true;
}

// A byte range [first, last] of a file of `size` bytes.
struct byte_range {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
};

enum class range_kind { whole, partial, unsatisfiable };

// RFC 9110 14.1: one range ("a-b", "a-", "-n") is served; several, or one
// that is not well-formed, get the whole file (a server may ignore Range).
inline range_kind parse_range(std::string_view value, uint64_t size, byte_range& out) {
  if (value.empty()) return range_kind::whole;
  if (!value.starts_with("bytes=")) return range_kind::whole;
  value = trim(value.substr(6));
  if (value.find(',') != std::string_view::npos) return range_kind::whole;
  const size_t dash = value.find('-');
  if (dash == std::string_view::npos) return range_kind::whole;
  const std::string_view a = trim(value.substr(0, dash)), b = trim(value.substr(dash + 1));
  auto number = [](std::string_view s, uint64_t& v) {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
  };
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // the last n bytes
    if (!number(b, last)) return range_kind::whole;
    if (last == 0 || size == 0) return range_kind::unsatisfiable;
    out = {size - std::min(last, size), size - 1};
    return range_kind::partial;
  }
  if (!number(a, first)) return range_kind::whole;
  if (b.empty()) {
    last = UINT64_MAX;
  } else if (!number(b, last) || last < first) {
    return range_kind::whole;
  }
  if (first >= size) return range_kind::unsatisfiable;
  out = {first, std::min(last, size - 1)};
  return range_kind::partial;
}

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a time in seconds.
inline std::string http_date(time_t t) {
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = ::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

// The seconds an IMF-fixdate names; nullopt for anything else (the
// obsolete RFC 850 and asctime forms are not accepted: the header is then
// ignored, which only costs a full answer).
inline std::optional<time_t> parse_http_date(std::string_view v) {
  if (v.size() != 29) return std::nullopt;
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  auto num = [&](size_t at, size_t len, int& out) {
    const auto [p, ec] = std::from_chars(v.data() + at, v.data() + at + len, out);
    return ec == std::errc() && p == v.data() + at + len;
  };
  struct tm tm {};
  if (v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' || v[22] != ':' ||
      v.substr(25) != " GMT") {
    return std::nullopt;
  }
  const size_t m = months.find(v.substr(8, 3));
  if (m == std::string_view::npos || m % 3 != 0) return std::nullopt;
  int year = 0;
  if (!num(5, 2, tm.tm_mday) || !num(12, 4, year) || !num(17, 2, tm.tm_hour) || !num(20, 2, tm.tm_min) ||
      !num(23, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  tm.tm_mon = static_cast<int>(m / 3);
  tm.tm_year = year - 1900;
  return ::timegm(&tm);
}

// The Content-Type for a file name, by its extension.
inline std::string_view content_type(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  const std::string_view ext = name.substr(dot + 1);
  static constexpr std::pair<std::string_view, std::string_view> types[] = {
      {"html", "text/html"},      {"htm", "text/html"},         {"css", "text/css"},
      {"js", "text/javascript"},  {"mjs", "text/javascript"},   {"json", "application/json"},
      {"txt", "text/plain"},      {"md", "text/markdown"},      {"xml", "text/xml"},
      {"csv", "text/csv"},        {"svg", "image/svg+xml"},     {"png", "image/png"},
      {"jpg", "image/jpeg"},      {"jpeg", "image/jpeg"},       {"gif", "image/gif"},
      {"webp", "image/webp"},     {"ico", "image/x-icon"},      {"avif", "image/avif"},
      {"pdf", "application/pdf"}, {"wasm", "application/wasm"}, {"zip", "application/zip"},
      {"gz", "application/gzip"}, {"tar", "application/x-tar"}, {"mp4", "video/mp4"},
      {"webm", "video/webm"},     {"mp3", "audio/mpeg"},        {"ogg", "audio/ogg"},
      {"woff", "font/woff"},      {"woff2", "font/woff2"},      {"ttf", "font/ttf"},
  };
  for (const auto& [e, type] : types) {
    if (equals_nocase(e, ext)) return type;
  }
  return "application/octet-stream";
}

// An error answer's small HTML body.
inline std::string error_body(status s) {
  std::string code = std::to_string(static_cast<int>(s));
  std::string title = code;
  title += ' ';
  title += reason(s);
  std::string body = "<html>\r\n<head><title>";
  body += title;
  body += "</title></head>\r\n<body>\r\n<center><h1>";
  body += title;
  body += "</h1></center>\r\n<hr><center>coil file_server</center>\r\n</body>\r\n</html>\r\n";
  return body;
}

enum class head_state { incomplete, complete, refused };

// Parses a complete head at the front of the reader's buffer without
// waiting: incomplete when more bytes are needed (scanned remembers how far
// the search for the blank line got), refused with the status to answer.
template <class R>
head_state try_parse(R& in, size_t& scanned, request& r, status& why) {
  const auto b = in.buffered();
  const std::string_view text(reinterpret_cast<const char*>(b.data()), b.size());
  const size_t end = text.find("\r\n\r\n", scanned);
  if (end == std::string_view::npos) {
    scanned = text.size() < 3 ? 0 : text.size() - 3;
    const size_t first_line = text.find('\n');
    if ((first_line == std::string_view::npos ? text.size() : first_line) > max_request_line) {
      why = status::uri_too_long;
      return head_state::refused;
    }
    if (text.size() >= max_head) {
      why = status::header_too_large;
      return head_state::refused;
    }
    return head_state::incomplete;
  }
  const std::string_view head = text.substr(0, end);
  r = request{};
  size_t line_end = head.find("\r\n");
  if (line_end == std::string_view::npos) line_end = head.size();
  if (line_end > max_request_line) {
    why = status::uri_too_long;
    return head_state::refused;
  }
  std::string_view target;
  if (!parse_request_line(head.substr(0, line_end), r, why, target)) return head_state::refused;
  bool keep_alive = false, host = false;
  for (size_t pos = line_end + 2; pos < head.size();) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    if (!parse_header(head.substr(pos, next - pos), r, keep_alive, host)) {
      why = status::bad_request;
      return head_state::refused;
    }
    pos = next + 2;
  }
  if (!r.http10 && !host) {
    why = status::bad_request;
    return head_state::refused;
  }
  auto path = normalize_target(target, why);
  if (!path) return head_state::refused;
  r.path = std::move(*path);
  if (r.http10 && !keep_alive) r.close = true;
  if (r.has_body) r.close = true;  // bodies are not read: the connection ends after the answer
  in.consume(end + 4);
  scanned = 0;
  return head_state::complete;
}

}  // namespace file_server
