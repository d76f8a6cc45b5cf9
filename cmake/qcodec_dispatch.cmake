# qcodec_add_kernel_dispatch(<target>)
#
# Adds runtime dispatch of qcodec's SIMD kernels to <target> (xsimd's per-ISA translation-unit
# pattern): one generated source per instruction set, compiled with that set's flags, and the
# QCODEC_DISPATCH_* definitions that make qcodec::simd::kernels() choose among them at run time.
# On targets without runtime-selectable ISAs (e.g. AArch64, where NEON is baseline) it does
# nothing and kernels() uses the compile-time target.
#
# The ISAs and the flags their translation units are compiled with. The AVX2 unit also turns
# AVX-512 off, so that a program built with -march=native on an AVX-512 machine still gets AVX2
# kernels that run on AVX2-only CPUs.
set(QCODEC_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c -mno-avx512f)
set(QCODEC_ISA_FLAGS_avx512 -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx2 -mfma -mf16c)
set(QCODEC_DISPATCH_ISAS avx2 avx512)
set(_qcodec_dispatch_dir "${CMAKE_CURRENT_LIST_DIR}")

function(qcodec_dispatch_supported out)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$"
     AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

function(qcodec_add_kernel_dispatch target)
  qcodec_dispatch_supported(supported)
  if(NOT supported)
    return()
  endif()
  # A library passes the definitions on to everything that links it: every translation unit of
  # a program must agree on them (dispatch.hpp).
  get_target_property(type ${target} TYPE)
  if(type MATCHES "STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY")
    set(scope PUBLIC)
  else()
    set(scope PRIVATE)
  endif()
  foreach(isa IN LISTS QCODEC_DISPATCH_ISAS)
    set(source "${CMAKE_CURRENT_BINARY_DIR}/qcodec_kernels_${isa}.cpp")
    if(NOT EXISTS "${source}")
      set(QCODEC_ISA ${isa})
      configure_file("${_qcodec_dispatch_dir}/qcodec_kernels_isa.cpp.in" "${source}" @ONLY)
    endif()
    target_sources(${target} PRIVATE "${source}")
    set_source_files_properties("${source}" TARGET_DIRECTORY ${target} PROPERTIES
      COMPILE_OPTIONS "${QCODEC_ISA_FLAGS_${isa}}")
    string(TOUPPER ${isa} ISA)
    target_compile_definitions(${target} ${scope} QCODEC_DISPATCH_${ISA}=1)
  endforeach()
endfunction()

# qcodec_add_kernel_library(<name>)
#
# A static library holding the per-ISA kernel translation units once, for programs (or a whole
# project) that link several executables: each links <name> instead of compiling the kernels
# again. Where runtime dispatch is not supported it is an interface library that just links
# qcodec (kernels() then uses the compile-time target).
function(qcodec_add_kernel_library name)
  qcodec_dispatch_supported(supported)
  if(NOT supported)
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE qcodec::qcodec)
    return()
  endif()
  add_library(${name} STATIC)
  target_link_libraries(${name} PUBLIC qcodec::qcodec)
  qcodec_add_kernel_dispatch(${name})
endfunction()
