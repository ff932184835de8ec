#pragma once
// TLS test fixtures: a certificate authority and certificates made with the
// openssl command-line tool at test time (nothing with a private key is
// checked in), and child processes (openssl s_server, s_client, curl).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "coil/coil.hpp"
#include "coil/tls/stream.hpp"

extern char** environ;

namespace coil::test {

// Everything a TLS test needs on disk, made once per process.
struct test_pki {
  std::string dir;
  std::string ca;           // the test CA's certificate
  std::string cert, key;    // localhost + 127.0.0.1, signed by the CA, valid a day
  std::string expired;      // same key, expired yesterday
  std::string self_signed;  // localhost, signed by itself (not by the CA)
  std::string self_key;
  bool ok = false;

  static const test_pki& get() {
    static const test_pki p = make();
    return p;
  }

 private:
  static bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
  static test_pki make() {
    test_pki p;
    char tmpl[] = "/tmp/coil-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return p;
    p.dir = tmpl;
    const std::string d = p.dir + "/";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    p.ca = d + "ca.pem";
    p.cert = d + "cert.pem";
    p.key = d + "key.pem";
    p.expired = d + "expired.pem";
    p.self_signed = d + "self.pem";
    p.self_key = d + "self.key";
    std::FILE* f = std::fopen((d + "ext").c_str(), "w");
    if (f == nullptr) return p;
    std::fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\n", f);
    std::fclose(f);
    p.ok = sh("openssl req -x509" + ec + "-keyout " + d + "ca.key -out " + p.ca + " -days 2 -subj /CN=coil-test-ca") &&
           sh("openssl req" + ec + "-keyout " + p.key + " -out " + d + "cert.csr -subj /CN=localhost") &&
           sh("openssl x509 -req -in " + d + "cert.csr -CA " + p.ca + " -CAkey " + d + "ca.key -CAcreateserial -out " +
              p.cert + " -days 1 -extfile " + d + "ext") &&
           sh("openssl x509 -req -in " + d + "cert.csr -CA " + p.ca + " -CAkey " + d + "ca.key -CAcreateserial -out " +
              p.expired + " -days -1 -extfile " + d + "ext") &&
           sh("openssl req -x509" + ec + "-keyout " + p.self_key + " -out " + p.self_signed +
              " -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1");
    return p;
  }
};

#define COIL_REQUIRE_PKI()                                                            \
  do {                                                                                \
    if (!::coil::test::test_pki::get().ok) GTEST_FAIL() << "openssl could not make the test certificates"; \
  } while (0)

// A child process with stdin and stdout on pipes; killed and reaped when
// destroyed.
class child {
 public:
  explicit child(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~child() {
    close_stdin();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  bool started() const { return pid_ > 0; }
  void write_stdin(std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::write(in_, s.data(), s.size());
      if (n <= 0) return;
      s.remove_prefix(static_cast<size_t>(n));
    }
  }
  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // Reads stdout until it contains `want`, ends, or stays silent for 10 s;
  // everything read so far.
  std::string read_until(std::string_view want) {
    while (out_buf_.find(want) == std::string::npos) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 10'000) != 1) break;
      char b[4096];
      const ssize_t n = ::read(out_, b, sizeof b);
      if (n <= 0) break;
      out_buf_.append(b, static_cast<size_t>(n));
    }
    return out_buf_;
  }
  // Reads stdout to its end, then reaps: the exit status (-1 if killed).
  int finish(std::string* out = nullptr) {
    close_stdin();
    read_until(std::string_view("\0\0never\0", 8));
    if (out != nullptr) *out = out_buf_;
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string out_buf_;
};

// A port that was free a moment ago (for servers other programs run).
inline uint16_t free_port() {
  auto l = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!l) return 0;
  auto a = l->local_address();
  return a ? a->port() : 0;
}

}  // namespace coil::test
