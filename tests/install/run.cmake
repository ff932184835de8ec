# Install-and-consume test, run as
#   cmake -DCOIL_BINARY_DIR=... -DWORK_DIR=... [options below] -P run.cmake
# 1. `cmake --install` the coil build tree into WORK_DIR/prefix;
# 2. configure, build and run this directory's project against it with
#    find_package(coil);
# 3. compile and run main.cpp with the flags `pkg-config --cflags --libs coil`
#    gives (PKG_CONFIG_PATH pointing into the prefix).
# Any failing step fails the test.
#
# Options: CXX (compiler), CXX_ID (its CMAKE_CXX_COMPILER_ID), BUILD_TYPE,
# GENERATOR, MAKE_PROGRAM, LIBDIR (CMAKE_INSTALL_LIBDIR of the coil build),
# SANITIZE (COIL_SANITIZE of the coil build: a sanitized libcoil.a needs
# sanitized consumers).
cmake_minimum_required(VERSION 3.25)

foreach(var COIL_BINARY_DIR WORK_DIR CXX)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT LIBDIR)
  set(LIBDIR lib)
endif()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE RelWithDebInfo)
endif()

set(src_dir "${CMAKE_CURRENT_LIST_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer")

# Runs a command; stops the test with `what` if it fails or times out.
function(step what)
  message(STATUS "install test: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc COMMAND_ECHO STDOUT TIMEOUT 600)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(san_cflags "")
set(san_ldflags "")
if(SANITIZE)
  set(san_cflags -fsanitize=${SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  # The same exceptions as the top-level CMakeLists.txt makes (see there).
  if(SANITIZE MATCHES "undefined")
    list(APPEND san_cflags -fno-sanitize=vptr)
    if(CXX_ID MATCHES "Clang")
      list(APPEND san_cflags -fno-sanitize=function)
    endif()
  endif()
  set(san_ldflags -fsanitize=${SANITIZE})
endif()

# --- 1. install --------------------------------------------------------------
step("cmake --install" "${CMAKE_COMMAND}" --install "${COIL_BINARY_DIR}" --prefix "${prefix}" --config "${BUILD_TYPE}")
foreach(f "include/coil/coil.hpp" "${LIBDIR}/cmake/coil/coilConfig.cmake"
          "${LIBDIR}/cmake/coil/coilConfigVersion.cmake" "${LIBDIR}/pkgconfig/coil.pc")
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install test: ${prefix}/${f} was not installed")
  endif()
endforeach()

# --- 2. find_package(coil) ---------------------------------------------------
set(gen_args "")
if(GENERATOR)
  list(APPEND gen_args -G "${GENERATOR}")
  if(MAKE_PROGRAM)
    list(APPEND gen_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
endif()
list(JOIN san_cflags " " san_cflags_str)
list(JOIN san_ldflags " " san_ldflags_str)
step("configure consumer (find_package)"
     "${CMAKE_COMMAND}" -S "${src_dir}" -B "${consumer_build}" ${gen_args}
     "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
     "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON"
     "-DCMAKE_CXX_FLAGS=${san_cflags_str}" "-DCMAKE_EXE_LINKER_FLAGS=${san_ldflags_str}")
step("build consumer (find_package)" "${CMAKE_COMMAND}" --build "${consumer_build}" --config "${BUILD_TYPE}")
step("run consumer (find_package)" "${consumer_build}/coil_consumer")

# --- 3. pkg-config -----------------------------------------------------------
find_program(PKG_CONFIG_EXE NAMES pkg-config pkgconf REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${prefix}/${LIBDIR}/pkgconfig")
execute_process(COMMAND "${PKG_CONFIG_EXE}" --cflags --libs coil
                RESULT_VARIABLE rc OUTPUT_VARIABLE pc_flags ERROR_VARIABLE pc_err
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install test: pkg-config --cflags --libs coil failed (${rc}): ${pc_err}")
endif()
message(STATUS "install test: pkg-config --cflags --libs coil: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
step("build consumer (pkg-config)"
     "${CXX}" -std=c++20 -Wall -Wextra -Werror ${san_cflags} "${src_dir}/main.cpp" -o "${WORK_DIR}/coil_consumer_pc"
     ${pc_flags} ${san_ldflags})
step("run consumer (pkg-config)" "${WORK_DIR}/coil_consumer_pc")

message(STATUS "install test: passed")
