#pragma once
// All operation structs. See ops/common.hpp for the contract they share.
#include "coil/io/ops/common.hpp"
#include "coil/io/ops/fs.hpp"
#include "coil/io/ops/net.hpp"
#include "coil/io/ops/poll.hpp"
#include "coil/io/ops/link.hpp"
#include "coil/io/ops/splice.hpp"
