#pragma once
// kv_server's commands over one store, with redis-server's replies and error
// texts (arity, syntax, integers, overflow, expire times), and the table the
// connection looks commands up in: arity as Redis declares it, and which
// arguments are keys (the core that owns them runs the command).
#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

#include "resp.hpp"
#include "store.hpp"

namespace kv {

// Which arguments are keys.
enum class keys : uint8_t {
  none,         // no key: runs where the connection is
  first,        // argv[1]: runs on its owner core
  all,          // argv[1..]: split by owner, answers gathered in order
  pairs,        // argv[1], argv[3]...: MSET
  every_shard,  // every core's keys: DBSIZE, FLUSHALL
};

using handler = void (*)(store&, std::string* argv, size_t argc, std::string& out);

struct command {
  std::string_view name;  // lowercase, as Redis prints it in errors
  int arity;              // Redis's: n exactly, or -n for at least n
  keys key_args;
  handler run;
};

// ASCII case-insensitive equality with `lower`, lowercase letters only.
inline bool equals_nocase(std::string_view s, std::string_view lower) {
  if (lower.size() != s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) | 0x20) != static_cast<unsigned char>(lower[i])) return false;
  }
  return true;
}

inline void reply_arity(std::string& out, std::string_view name) {
  std::string text = "ERR wrong number of arguments for '";
  text.append(name);
  text.append("' command");
  reply_error(out, text);
}
inline void reply_not_integer(std::string& out) { out.append("-ERR value is not an integer or out of range\r\n"); }
inline void reply_syntax(std::string& out) { out.append("-ERR syntax error\r\n"); }
inline void reply_expire_time(std::string& out, std::string_view name) {
  std::string text = "ERR invalid expire time in '";
  text.append(name);
  text.append("' command");
  reply_error(out, text);
}

namespace cmd {

inline void ping(store&, std::string* a, size_t n, std::string& out) {
  if (n > 2) {
    reply_arity(out, "ping");
  } else if (n == 1) {
    out.append("+PONG\r\n");
  } else {
    reply_bulk(out, a[1]);
  }
}
inline void echo(store&, std::string* a, size_t, std::string& out) { reply_bulk(out, a[1]); }

inline void get(store& db, std::string* a, size_t, std::string& out) {
  const entry* e = db.find(a[1]);
  if (e == nullptr) {
    reply_null(out);
  } else {
    reply_bulk(out, e->value);
  }
}

// SET's expire options: 1 EX, 2 PX, 3 EXAT, 4 PXAT, 0 none.
inline int expire_unit(std::string_view o) {
  return equals_nocase(o, "ex") ? 1 : equals_nocase(o, "px") ? 2 : equals_nocase(o, "exat") ? 3 : equals_nocase(o, "pxat") ? 4 : 0;
}

// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], checked
// in Redis's order: options, then the expire time, then the key.
inline void set(store& db, std::string* a, size_t n, std::string& out) {
  bool nx = false, xx = false, get_old = false, keep_ttl = false;
  int unit = 0;  // expire_unit's
  const std::string* when = nullptr;
  for (size_t j = 3; j < n; ++j) {
    const std::string& o = a[j];
    const bool has_next = j + 1 < n;
    if (equals_nocase(o, "nx") && !xx) {
      nx = true;
    } else if (equals_nocase(o, "xx") && !nx) {
      xx = true;
    } else if (equals_nocase(o, "get")) {
      get_old = true;
    } else if (equals_nocase(o, "keepttl") && unit == 0) {
      keep_ttl = true;
    } else if (const int u = expire_unit(o); u != 0 && (unit == 0 || unit == u) && !keep_ttl && has_next) {
      unit = u;  // the same unit twice: the last time wins, as in Redis
      when = &a[++j];
    } else {
      reply_syntax(out);
      return;
    }
  }
  int64_t at_ms = 0;
  if (when != nullptr) {
    long long v = 0;
    if (!parse_ll(*when, v)) {
      reply_not_integer(out);
      return;
    }
    const bool seconds = unit == 1 || unit == 3;
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) {
      reply_expire_time(out, "set");
      return;
    }
    if (seconds) v *= 1000;
    if (unit <= 2) {
      const int64_t now = unix_ms();
      if (v > LLONG_MAX - now) {
        reply_expire_time(out, "set");
        return;
      }
      v += now;
    }
    at_ms = v;
  }
  entry* old = db.find(a[1]);
  if (get_old) {
    if (old == nullptr) {
      reply_null(out);
    } else {
      reply_bulk(out, old->value);
    }
  }
  if ((nx && old != nullptr) || (xx && old == nullptr)) {
    if (!get_old) reply_null(out);
    return;
  }
  bool created = false;
  entry& e = old != nullptr ? *old : db.upsert(a[1], created);
  e.value.swap(a[2]);  // the parser's copy becomes the value
  if (!keep_ttl) db.set_expiry(e, at_ms);
  if (!get_old) reply_ok(out);
}

inline void setnx(store& db, std::string* a, size_t, std::string& out) {
  bool created = false;
  entry& e = db.upsert(a[1], created);
  if (created) e.value.swap(a[2]);
  reply_int(out, created ? 1 : 0);
}

inline void strlen(store& db, std::string* a, size_t, std::string& out) {
  const entry* e = db.find(a[1]);
  reply_int(out, e == nullptr ? 0 : static_cast<long long>(e->value.size()));
}

inline void append(store& db, std::string* a, size_t, std::string& out) {
  bool created = false;
  entry& e = db.upsert(a[1], created);
  e.value.append(a[2]);
  reply_int(out, static_cast<long long>(e.value.size()));
}

// INCR, DECR, INCRBY, DECRBY: the value must be an integer and the sum
// must fit; the key keeps its expiry.
inline void add(store& db, const std::string& key, long long by, std::string& out) {
  entry* e = db.find(key);
  long long v = 0;
  if (e != nullptr && !parse_ll(e->value, v)) {
    reply_not_integer(out);
    return;
  }
  if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
    out.append("-ERR increment or decrement would overflow\r\n");
    return;
  }
  v += by;
  bool created = false;
  entry& target = e != nullptr ? *e : db.upsert(key, created);
  target.value = std::to_string(v);
  reply_int(out, v);
}
inline void incr(store& db, std::string* a, size_t, std::string& out) { add(db, a[1], 1, out); }
inline void decr(store& db, std::string* a, size_t, std::string& out) { add(db, a[1], -1, out); }
inline void incrby(store& db, std::string* a, size_t, std::string& out) {
  long long by = 0;
  if (!parse_ll(a[2], by)) {
    reply_not_integer(out);
    return;
  }
  add(db, a[1], by, out);
}
inline void decrby(store& db, std::string* a, size_t, std::string& out) {
  long long by = 0;
  if (!parse_ll(a[2], by)) {
    reply_not_integer(out);
    return;
  }
  if (by == LLONG_MIN) {
    out.append("-ERR decrement would overflow\r\n");
    return;
  }
  add(db, a[1], -by, out);
}

inline void del(store& db, std::string* a, size_t n, std::string& out) {
  long long count = 0;
  for (size_t i = 1; i < n; ++i) count += db.erase(a[i]) ? 1 : 0;
  reply_int(out, count);
}
inline void exists(store& db, std::string* a, size_t n, std::string& out) {
  long long count = 0;
  for (size_t i = 1; i < n; ++i) count += db.find(a[i]) != nullptr ? 1 : 0;
  reply_int(out, count);
}
inline void mget(store& db, std::string* a, size_t n, std::string& out) {
  reply_array(out, n - 1);
  for (size_t i = 1; i < n; ++i) get(db, a + i - 1, 2, out);
}
inline void mset(store& db, std::string* a, size_t n, std::string& out) {
  if (n % 2 == 0) {
    reply_arity(out, "mset");
    return;
  }
  for (size_t i = 1; i < n; i += 2) {
    bool created = false;
    entry& e = db.upsert(a[i], created);
    e.value.swap(a[i + 1]);
    db.set_expiry(e, 0);
  }
  reply_ok(out);
}

// EXPIRE/PEXPIRE key time [NX|XX|GT|LT], in Redis's order of checks.
inline void expire_generic(store& db, std::string* a, size_t n, std::string& out, bool seconds) {
  const std::string_view name = seconds ? "expire" : "pexpire";
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t j = 3; j < n; ++j) {
    if (equals_nocase(a[j], "nx")) {
      nx = true;
    } else if (equals_nocase(a[j], "xx")) {
      xx = true;
    } else if (equals_nocase(a[j], "gt")) {
      gt = true;
    } else if (equals_nocase(a[j], "lt")) {
      lt = true;
    } else {
      std::string text = "ERR Unsupported option ";
      text.append(a[j]);
      reply_error(out, text);
      return;
    }
  }
  if (nx && (xx || gt || lt)) {
    out.append("-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    return;
  }
  if (gt && lt) {
    out.append("-ERR GT and LT options at the same time are not compatible\r\n");
    return;
  }
  long long when = 0;
  if (!parse_ll(a[2], when)) {
    reply_not_integer(out);
    return;
  }
  if (seconds) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
      reply_expire_time(out, name);
      return;
    }
    when *= 1000;
  }
  const int64_t now = unix_ms();
  if (when > LLONG_MAX - now) {
    reply_expire_time(out, name);
    return;
  }
  when += now;
  entry* e = db.find(a[1]);
  if (e == nullptr) {
    reply_int(out, 0);
    return;
  }
  const long long current = e->expire_at_ms == 0 ? -1 : e->expire_at_ms;
  if ((nx && current != -1) || (xx && current == -1) || (gt && (when <= current || current == -1)) ||
      (lt && current != -1 && when >= current)) {
    reply_int(out, 0);
    return;
  }
  if (when <= now) {
    db.erase(a[1]);
  } else {
    db.set_expiry(*e, when);
  }
  reply_int(out, 1);
}
inline void expire(store& db, std::string* a, size_t n, std::string& out) { expire_generic(db, a, n, out, true); }
inline void pexpire(store& db, std::string* a, size_t n, std::string& out) { expire_generic(db, a, n, out, false); }

inline void ttl_generic(store& db, std::string* a, std::string& out, bool ms) {
  const entry* e = db.find(a[1]);
  if (e == nullptr) {
    reply_int(out, -2);
  } else if (e->expire_at_ms == 0) {
    reply_int(out, -1);
  } else {
    const long long left = std::max<long long>(0, e->expire_at_ms - unix_ms());
    reply_int(out, ms ? left : (left + 500) / 1000);
  }
}
inline void ttl(store& db, std::string* a, size_t, std::string& out) { ttl_generic(db, a, out, false); }
inline void pttl(store& db, std::string* a, size_t, std::string& out) { ttl_generic(db, a, out, true); }

inline void persist(store& db, std::string* a, size_t, std::string& out) {
  entry* e = db.find(a[1]);
  const bool had = e != nullptr && e->expire_at_ms != 0;
  if (had) db.set_expiry(*e, 0);
  reply_int(out, had ? 1 : 0);
}

inline void dbsize(store& db, std::string*, size_t, std::string& out) {
  reply_int(out, static_cast<long long>(db.size()));
}
inline void flushall(store& db, std::string* a, size_t n, std::string& out) {
  if (n > 2 || (n == 2 && !equals_nocase(a[1], "sync") && !equals_nocase(a[1], "async"))) {
    reply_syntax(out);
    return;
  }
  db.clear();
  reply_ok(out);
}

// What clients send at start-up, answered as a server without persistence.
inline void unknown_subcommand(std::string* a, std::string_view container, std::string& out) {
  std::string text = "ERR unknown subcommand '";
  text.append(std::string_view(a[1]).substr(0, 128));
  text.append("'. Try ");
  for (char c : container) text.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  text.append(" HELP.");
  reply_error(out, text);
}
inline void config(store&, std::string* a, size_t n, std::string& out) {
  if (equals_nocase(a[1], "get")) {
    if (n < 3) {
      reply_arity(out, "config|get");
      return;
    }
    std::string items;
    size_t count = 0;
    for (size_t i = 2; i < n; ++i) {
      const std::string_view v = equals_nocase(a[i], "save") ? "" : equals_nocase(a[i], "appendonly") ? "no" : "-";
      if (v == "-") continue;
      std::string name = a[i];
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply_bulk(items, name);
      reply_bulk(items, v);
      count += 2;
    }
    reply_array(out, count);
    out.append(items);
  } else if (equals_nocase(a[1], "resetstat")) {
    reply_ok(out);
  } else {
    unknown_subcommand(a, "config", out);
  }
}
inline void command_info(store&, std::string* a, size_t n, std::string& out) {
  if (n == 1 || equals_nocase(a[1], "docs") || equals_nocase(a[1], "info")) {
    out.append("*0\r\n");  // clients then go without command hints
  } else if (equals_nocase(a[1], "count")) {
    reply_int(out, 0);
  } else {
    unknown_subcommand(a, "command", out);
  }
}
inline void client(store&, std::string* a, size_t n, std::string& out) {
  if (equals_nocase(a[1], "setname") && n == 3) {
    reply_ok(out);
  } else if (equals_nocase(a[1], "setname")) {
    reply_arity(out, "client|setname");
  } else if (equals_nocase(a[1], "getname")) {
    reply_null(out);
  } else {
    unknown_subcommand(a, "client", out);
  }
}
inline void hello(store&, std::string*, size_t, std::string& out) {
  out.append("-NOPROTO sorry, this protocol version is not supported\r\n");  // clients fall back to RESP2
}
inline void select(store&, std::string* a, size_t, std::string& out) {
  long long db = 0;
  if (!parse_ll(a[1], db)) {
    reply_not_integer(out);
  } else if (db != 0) {
    out.append("-ERR DB index is out of range\r\n");
  } else {
    reply_ok(out);
  }
}
inline void info(store&, std::string*, size_t, std::string& out) {
  reply_bulk(out, "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n");
}
inline void quit(store&, std::string*, size_t, std::string& out) { reply_ok(out); }

}  // namespace cmd

inline constexpr command commands[] = {
    {"get", 2, keys::first, cmd::get},
    {"set", -3, keys::first, cmd::set},
    {"incr", 2, keys::first, cmd::incr},
    {"ping", -1, keys::none, cmd::ping},
    {"mget", -2, keys::all, cmd::mget},
    {"mset", -3, keys::pairs, cmd::mset},
    {"del", -2, keys::all, cmd::del},
    {"exists", -2, keys::all, cmd::exists},
    {"decr", 2, keys::first, cmd::decr},
    {"incrby", 3, keys::first, cmd::incrby},
    {"decrby", 3, keys::first, cmd::decrby},
    {"expire", -3, keys::first, cmd::expire},
    {"pexpire", -3, keys::first, cmd::pexpire},
    {"ttl", 2, keys::first, cmd::ttl},
    {"pttl", 2, keys::first, cmd::pttl},
    {"persist", 2, keys::first, cmd::persist},
    {"setnx", 3, keys::first, cmd::setnx},
    {"strlen", 2, keys::first, cmd::strlen},
    {"append", 3, keys::first, cmd::append},
    {"echo", 2, keys::none, cmd::echo},
    {"dbsize", 1, keys::every_shard, cmd::dbsize},
    {"flushall", -1, keys::every_shard, cmd::flushall},
    {"flushdb", -1, keys::every_shard, cmd::flushall},
    {"config", -2, keys::none, cmd::config},
    {"command", -1, keys::none, cmd::command_info},
    {"client", -2, keys::none, cmd::client},
    {"hello", -1, keys::none, cmd::hello},
    {"select", 2, keys::none, cmd::select},
    {"info", -1, keys::none, cmd::info},
    {"quit", -1, keys::none, cmd::quit},
};

// The command named by name (any case), or nullptr. A short scan: the most
// used come first, and most names differ in length or first letter.
inline const command* find_command(std::string_view name) {
  for (const command& c : commands) {
    if (equals_nocase(name, c.name)) return &c;
  }
  return nullptr;
}

inline bool arity_ok(const command& c, size_t argc) {
  return c.arity > 0 ? argc == static_cast<size_t>(c.arity) : argc >= static_cast<size_t>(-c.arity);
}

// Redis's reply to an unknown command: its name and the start of its
// arguments, each cut to fit 128 bytes.
inline void reply_unknown(std::string& out, const std::string* a, size_t n) {
  std::string text = "ERR unknown command '";
  text.append(std::string_view(a[0].c_str()).substr(0, 128));
  text.append("', with args beginning with: ");
  std::string args;
  for (size_t i = 1; i < n && args.size() < 128; ++i) {
    const size_t room = 128 - args.size();
    args.push_back('\'');
    args.append(std::string_view(a[i].c_str()).substr(0, room));
    args.append("' ");
  }
  text.append(args);
  reply_error(out, text);
}

}  // namespace kv
