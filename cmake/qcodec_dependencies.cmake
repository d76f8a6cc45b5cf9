# Finds qcodec's dependencies. Used by qcodec's own build and by the installed qcodecConfig.cmake.
#
# xsimd and Eigen ship version files that only accept the same major version, so we ask for the
# packages without a version and check the minimum by hand.
set(QCODEC_XSIMD_MIN_VERSION 8.1)
set(QCODEC_EIGEN_MIN_VERSION 3.4)

# Debian's xsimd 8.1 target links a target named `xtl` (its optional complex-number support)
# without finding it; xsimd's headers only use xtl when XSIMD_ENABLE_XTL_COMPLEX is defined.
# Use xtl when installed, otherwise stand in an empty target so the link line stays valid.
if(NOT TARGET xtl)
  find_package(xtl QUIET)
endif()
find_package(xsimd REQUIRED)
if(xsimd_VERSION VERSION_LESS QCODEC_XSIMD_MIN_VERSION)
  message(FATAL_ERROR "qcodec needs xsimd >= ${QCODEC_XSIMD_MIN_VERSION}, found ${xsimd_VERSION}")
endif()
get_target_property(_qcodec_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
if("xtl" IN_LIST _qcodec_xsimd_links AND NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED GLOBAL)
endif()

find_package(Eigen3 REQUIRED NO_MODULE)
if(Eigen3_VERSION VERSION_LESS QCODEC_EIGEN_MIN_VERSION)
  message(FATAL_ERROR "qcodec needs Eigen >= ${QCODEC_EIGEN_MIN_VERSION}, found ${Eigen3_VERSION}")
endif()
