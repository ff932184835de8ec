#pragma once
// Everything public in coil.
#include "coil/core/error.hpp"
#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/fs/file.hpp"
#include "coil/io/ops.hpp"
#include "coil/io/driver.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"
#include "coil/rt/time.hpp"
#include "coil/rt/when.hpp"
