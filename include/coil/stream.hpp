#pragma once
// coil's stream toolkit: byte-stream concepts, buffered reading and writing,
// length-prefixed frames and copying, over sockets, pipes and files.
#include "coil/core/bytes.hpp"
#include "coil/stream/buffered_reader.hpp"
#include "coil/stream/buffered_writer.hpp"
#include "coil/stream/concepts.hpp"
#include "coil/stream/copy.hpp"
#include "coil/stream/file_cursor.hpp"
#include "coil/stream/framing.hpp"
