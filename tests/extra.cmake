# Tests beyond the gtest binaries; included at the end of tests/CMakeLists.txt.

# install_consumer: installs this build into a scratch prefix, then builds and
# runs tests/install/ against it, once through find_package(coil) and once
# through pkg-config. See tests/install/run.cmake.
add_test(NAME install_consumer
         COMMAND "${CMAKE_COMMAND}"
                 "-DCOIL_BINARY_DIR=${PROJECT_BINARY_DIR}"
                 "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install_consumer"
                 "-DCXX=${CMAKE_CXX_COMPILER}"
                 "-DCXX_ID=${CMAKE_CXX_COMPILER_ID}"
                 "-DBUILD_TYPE=$<CONFIG>"
                 "-DGENERATOR=${CMAKE_GENERATOR}"
                 "-DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}"
                 "-DLIBDIR=${CMAKE_INSTALL_LIBDIR}"
                 "-DSANITIZE=${COIL_SANITIZE}"
                 -P "${CMAKE_CURRENT_SOURCE_DIR}/install/run.cmake")
# It configures and builds a project of its own: give it time.
set_tests_properties(install_consumer PROPERTIES TIMEOUT 900 LABELS install)

# no_io_uring: runs a program with io_uring blocked by seccomp. The tour runs
# under it (short steps, a small file): coil falls back to epoll, the raw-ring
# baselines are skipped with a note, and the tour must still finish with 0.
add_executable(no_io_uring ${CMAKE_CURRENT_SOURCE_DIR}/no_io_uring.cpp)
target_link_libraries(no_io_uring PRIVATE ${COIL_SECCOMP_LIB})
target_compile_options(no_io_uring PRIVATE ${COIL_WARNINGS})
if(COIL_BUILD_BENCH)
  add_test(NAME bench.tour_without_io_uring
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tour_without_io_uring.sh $<TARGET_FILE:no_io_uring>
                   $<TARGET_FILE:coil-bench>)
  set_tests_properties(bench.tour_without_io_uring PROPERTIES TIMEOUT 300 LABELS bench
    ENVIRONMENT "TMPDIR=${CMAKE_CURRENT_BINARY_DIR}")
endif()
