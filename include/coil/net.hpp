#pragma once
// coil::net: sockets on the runtime.
#include "coil/net/address.hpp"
#include "coil/net/resolve.hpp"
#include "coil/net/tcp.hpp"
#include "coil/net/udp.hpp"
#include "coil/net/unix.hpp"
