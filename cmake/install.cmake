# Installation and packaging: headers, the library (exported as coil::coil),
# a CMake package (find_package(coil)) and a pkg-config file (coil.pc).
#
# Included at the end of the top-level CMakeLists.txt, so it sees the coil
# target and the variables set there. Paths are relative to the prefix given at
# install time (`cmake --install build --prefix /opt/coil`), so the installed
# tree can be moved.
include(CMakePackageConfigHelpers)

# coil's public headers use coroutines and concepts: consumers need C++20 too.
target_compile_features(coil PUBLIC cxx_std_20)

set(COIL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/coil"
    CACHE STRING "Where coilConfig.cmake goes, relative to the prefix")
set(COIL_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    CACHE STRING "Where coil.pc goes, relative to the prefix")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/coil"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        COMPONENT coil_development
        FILES_MATCHING PATTERN "*.hpp")

set(_coil_installed coil)
if(COIL_TLS)
  list(APPEND _coil_installed coil_tls)
endif()
install(TARGETS ${_coil_installed}
        EXPORT coilTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT coil_development
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT coil_runtime
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT coil_runtime
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# The exported target refers to PkgConfig::URING, tl::expected and
# Threads::Threads by name; coilConfig.cmake recreates them before including
# this file.
install(EXPORT coilTargets
        NAMESPACE coil::
        DESTINATION "${COIL_INSTALL_CMAKEDIR}"
        COMPONENT coil_development)

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/coilConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/coilConfig.cmake"
  INSTALL_DESTINATION "${COIL_INSTALL_CMAKEDIR}")
# 0.x: minor versions may break the API, so only the same minor matches.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/coilConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/coilConfig.cmake" "${PROJECT_BINARY_DIR}/coilConfigVersion.cmake"
        DESTINATION "${COIL_INSTALL_CMAKEDIR}"
        COMPONENT coil_development)

# pkg-config: the prefix is found from the .pc file's own location
# (${pcfiledir}), so `--prefix` at install time needs no reconfigure.
if(IS_ABSOLUTE "${COIL_INSTALL_PKGCONFIGDIR}")
  set(COIL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _coil_pc_up "/coil-root/${COIL_INSTALL_PKGCONFIGDIR}" "/coil-root")
  string(REGEX REPLACE "/$" "" _coil_pc_up "${_coil_pc_up}")
  set(COIL_PC_PREFIX "\${pcfiledir}/${_coil_pc_up}")
  unset(_coil_pc_up)
endif()
foreach(_dir INCLUDEDIR LIBDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(COIL_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(COIL_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
unset(_dir)
configure_file("${CMAKE_CURRENT_LIST_DIR}/coil.pc.in" "${PROJECT_BINARY_DIR}/coil.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/coil.pc"
        DESTINATION "${COIL_INSTALL_PKGCONFIGDIR}"
        COMPONENT coil_development)
