# Shared compile settings. Warnings live on an INTERFACE target that every Sluice
# target links privately; -Werror only when SLUICE_WERROR is on (CI).
add_library(sluice_warnings INTERFACE)
target_compile_options(sluice_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(SLUICE_WERROR)
  target_compile_options(sluice_warnings INTERFACE -Werror)
endif()

# Linker: mold when the compiler can use it (dev/install-deps.sh installs it). It links the
# ~40 binaries (1.5 GB with debug info) in about a quarter of GNU ld's time.
# -DSLUICE_LINKER=bfd (or gold, lld) picks another; empty: the compiler's default.
include(CheckLinkerFlag)
if(NOT DEFINED SLUICE_LINKER)
  check_linker_flag(CXX -fuse-ld=mold SLUICE_HAVE_MOLD)
  if(SLUICE_HAVE_MOLD)
    set(SLUICE_LINKER mold)
  else()
    set(SLUICE_LINKER "")
  endif()
  set(SLUICE_LINKER "${SLUICE_LINKER}" CACHE STRING "Linker for -fuse-ld= (default: mold if usable)")
endif()
if(SLUICE_LINKER)
  add_link_options(-fuse-ld=${SLUICE_LINKER})
endif()

if(SLUICE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The services' allocator: jemalloc (Debian's libjemalloc-dev; dev/install-deps.sh installs
# it). The gateway's publish path makes dozens of small allocations per event from several
# threads; with glibc's malloc they were about a third of its CPU, and jemalloc doubled the
# batched publish rate in gateway_bench. Not with the sanitizers (they bring their own).
# -DSLUICE_JEMALLOC=OFF keeps glibc's malloc.
option(SLUICE_JEMALLOC "Link the services and benchmarks with jemalloc" ON)
if(SLUICE_JEMALLOC AND NOT SLUICE_SANITIZE AND NOT SLUICE_FUZZ)
  find_library(SLUICE_JEMALLOC_LIBRARY NAMES jemalloc)
  if(NOT SLUICE_JEMALLOC_LIBRARY)
    message(FATAL_ERROR "jemalloc not found: apt-get install libjemalloc-dev (dev/install-deps.sh), "
                        "or configure with -DSLUICE_JEMALLOC=OFF")
  endif()
endif()
# sluice_allocator(TARGET): links a service or benchmark executable with the allocator above.
function(sluice_allocator target)
  if(SLUICE_JEMALLOC_LIBRARY AND SLUICE_JEMALLOC AND NOT SLUICE_SANITIZE AND NOT SLUICE_FUZZ)
    target_link_libraries(${target} PRIVATE ${SLUICE_JEMALLOC_LIBRARY})
  endif()
endfunction()

# sluice_unit_tests: every test binary labelled "unit", so the ASan build
# (dev/build.sh asan) compiles exactly what `ctest -L unit` runs and skips the service
# binaries, sluicectl and the benchmarks. sluice_test() adds to it.
add_custom_target(sluice_unit_tests)

# sluice_test(NAME SOURCES... LIBS ... LABELS ...): one gtest binary registered with ctest.
# Tests labelled "integration" need the local stack (dev/stack.sh up).
function(sluice_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main sluice_warnings)
  target_compile_definitions(${name} PRIVATE SLUICE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  # A test's own sources build without optimization or debug info in the default build (the
  # libraries under test keep theirs): such a file takes about 20 s instead of 34 s, mostly
  # spent on the gRPC, protobuf and gtest templates it instantiates. gtest names the file
  # and line of every failure itself. The sanitizer and fuzz builds are left as they are.
  if(CMAKE_BUILD_TYPE STREQUAL "RelWithDebInfo" AND NOT SLUICE_SANITIZE AND NOT SLUICE_FUZZ)
    target_compile_options(${name} PRIVATE -O0 -g0)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}"
    ENVIRONMENT "SLUICE_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  if("unit" IN_LIST T_LABELS)
    add_dependencies(sluice_unit_tests ${name})
  endif()
endfunction()
