# Install the headers and a relocatable CMake package (qcodecConfig.cmake, an
# architecture-independent version file, the exported target), plus a build-tree export so a
# consumer can point qcodec_DIR at this build directory without installing.
include(CMakePackageConfigHelpers)

set(QCODEC_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_DATADIR}/cmake/qcodec")

install(TARGETS qcodec EXPORT qcodecTargets)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT qcodecTargets NAMESPACE qcodec:: DESTINATION "${QCODEC_CMAKE_INSTALL_DIR}")

configure_package_config_file(cmake/qcodecConfig.cmake.in
  "${PROJECT_BINARY_DIR}/qcodecConfig.cmake"
  INSTALL_DESTINATION "${QCODEC_CMAKE_INSTALL_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/qcodecConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/qcodecConfig.cmake"
  "${PROJECT_BINARY_DIR}/qcodecConfigVersion.cmake"
  cmake/qcodec_dependencies.cmake
  cmake/qcodec_dispatch.cmake
  cmake/qcodec_kernels_isa.cpp.in
  DESTINATION "${QCODEC_CMAKE_INSTALL_DIR}")

# Build tree: the same config file finds qcodecTargets.cmake and the dispatch module beside it.
export(EXPORT qcodecTargets NAMESPACE qcodec:: FILE "${PROJECT_BINARY_DIR}/qcodecTargets.cmake")
foreach(file qcodec_dependencies.cmake qcodec_dispatch.cmake qcodec_kernels_isa.cpp.in)
  configure_file("cmake/${file}" "${PROJECT_BINARY_DIR}/${file}" COPYONLY)
endforeach()
