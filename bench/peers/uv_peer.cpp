// coil-peer-libuv echo LISTEN_FD CONNS
//
// The echo server of `coil-bench echo`, written with libuv (Debian's 1.44) as
// its guide teaches: uv_read_start into a buffer per connection, the echo
// tried at once with uv_try_write, and uv_write (reading paused) for what
// the socket would not take. Exits once CONNS connections have closed;
// coil-bench reads its CPU time from wait4.
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

struct connection {
  uv_tcp_t tcp;  // first: the handle's address is the connection's
  uv_write_t write;
  char buf[16 << 10];
};

struct server {
  uv_tcp_t listener;
  std::size_t conns = 0;
  std::size_t accepted = 0;
  std::size_t closed = 0;
};

server* owner(uv_handle_t* h) { return static_cast<server*>(h->loop->data); }

void on_closed(uv_handle_t* h) {
  ++owner(h)->closed;
  delete reinterpret_cast<connection*>(h);
}

void drop(connection* c) { uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed); }

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* out) {
  auto* c = reinterpret_cast<connection*>(h);
  *out = uv_buf_init(c->buf, sizeof(c->buf));
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*);

void on_written(uv_write_t* w, int status) {
  auto* c = static_cast<connection*>(w->data);
  if (status < 0 || uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) < 0) drop(c);
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  auto* c = reinterpret_cast<connection*>(s);
  if (n < 0) {
    drop(c);
    return;
  }
  if (n == 0) return;  // EAGAIN, nothing read
  uv_buf_t out = uv_buf_init(c->buf, static_cast<unsigned>(n));
  const int w = uv_try_write(s, &out, 1);
  if (w == n) return;
  if (w < 0 && w != UV_EAGAIN) {
    drop(c);
    return;
  }
  // The socket took part (or none): send the rest in the background, reading
  // paused so the buffer is not overwritten meanwhile.
  const int sent = w < 0 ? 0 : w;
  out = uv_buf_init(c->buf + sent, static_cast<unsigned>(n - sent));
  uv_read_stop(s);
  c->write.data = c;
  if (uv_write(&c->write, s, &out, 1, on_written) < 0) drop(c);
}

void on_connection(uv_stream_t* l, int status) {
  server* srv = owner(reinterpret_cast<uv_handle_t*>(l));
  if (status < 0) {
    std::fprintf(stderr, "libuv: accept: %s\n", uv_strerror(status));
    return;
  }
  auto* c = new connection;
  uv_tcp_init(l->loop, &c->tcp);
  if (uv_accept(l, reinterpret_cast<uv_stream_t*>(&c->tcp)) < 0) {
    drop(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  ++srv->accepted;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) < 0) drop(c);
  if (srv->accepted == srv->conns) uv_close(reinterpret_cast<uv_handle_t*>(&srv->listener), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::strcmp(argv[1], "echo") != 0) {
    std::fprintf(stderr, "usage: %s echo LISTEN_FD CONNS\n", argv[0]);
    return 2;
  }
  server srv;
  srv.conns = std::strtoull(argv[3], nullptr, 10);
  uv_loop_t* loop = uv_default_loop();
  loop->data = &srv;
  int r = uv_tcp_init(loop, &srv.listener);
  if (r == 0) r = uv_tcp_open(&srv.listener, std::atoi(argv[2]));
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&srv.listener), 4096, on_connection);
  if (r < 0) {
    std::fprintf(stderr, "libuv: listen: %s\n", uv_strerror(r));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);  // returns when every handle is closed
  return srv.closed == srv.conns ? 0 : 1;
}
