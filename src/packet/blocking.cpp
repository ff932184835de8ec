// Blocking forms: the async packet driven by coil::block.
#include "coil/packet/blocking.hpp"

#include <memory>
#include <optional>

#include "coil/rt/block.hpp"

namespace coil::packet {
namespace {

task<outcome> one_packet(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) {
  outcome o = co_await packet_awaiter<space>(s, d, buf, address, len);
  co_return o;
}

// read_all's packets: each reports to the shared count; the last one
// schedules the waiting task.
struct gather {
  std::size_t pending = 0;
  runtime* rt = nullptr;
  coil::detail::ready_node node;
  bool suspended = false;

  bool await_ready() const noexcept { return pending == 0; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    rt = runtime::current();
    node.handle = h;
    suspended = true;
  }
  void await_resume() const noexcept {}
  void one_done() noexcept {
    if (--pending == 0 && suspended) rt->schedule(node);
  }
};

class gather_member final : public packet_state {
 public:
  gather_member(gather& g, read_request& r) noexcept
      : packet_state(direction::read, r.buf.data(), r.address, r.buf.size()), g_(&g), r_(&r) {}

 private:
  void on_finished() noexcept override {
    r_->result = result();
    g_->one_done();
  }
  gather* g_;
  read_request* r_;
};

}  // namespace

task<result<std::size_t>> read_all(space& s, std::span<read_request> reqs) {
  // Destroyed mid-flight (frame torn down), the packets let go of their views.
  std::unique_ptr<std::optional<gather_member>[]> members(new std::optional<gather_member>[reqs.size()]);
  gather g;
  g.pending = reqs.size() + 1;  // + 1: nothing completes the gather while packets are still being started
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].result = outcome(reqs[i].buf.size());
    members[i].emplace(g, reqs[i]);
    if (reqs[i].buf.empty()) {
      g.one_done();  // an empty packet finishes without a view
    } else {
      members[i]->start(s);
    }
  }
  g.one_done();
  co_await g;
  std::size_t failed = 0;
  for (const read_request& r : reqs) failed += !r.result.all_ok();
  co_return failed;
}

result<outcome> run_blocking(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) {
  return coil::block(one_packet(s, d, buf, address, len));
}

}  // namespace coil::packet
