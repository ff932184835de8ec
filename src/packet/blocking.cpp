// Blocking forms: the async packet driven by block_on on a private runtime.
#include "coil/packet/blocking.hpp"

namespace coil::packet {
namespace {

task<outcome> one_packet(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) {
  outcome o = co_await packet_awaiter<space>(s, d, buf, address, len);
  co_return o;
}

}  // namespace

result<outcome> run_blocking(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) {
  if (runtime::current() != nullptr) return fail(errc::in_runtime);
  auto rt = runtime::create();
  if (!rt) return fail(rt.error());
  return (*rt)->block_on(one_packet(s, d, buf, address, len));
}

}  // namespace coil::packet
