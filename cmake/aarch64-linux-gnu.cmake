# Cross-compiles for linux-arm64 on an x86-64 Linux host with Debian's
# gcc-aarch64-linux-gnu / g++-aarch64-linux-gnu (used by scripts/prebuildify.js).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BEUSS_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BEUSS_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${BEUSS_CROSS_TRIPLE}-g++)
set(CMAKE_AR ${BEUSS_CROSS_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${BEUSS_CROSS_TRIPLE}-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP ${BEUSS_CROSS_TRIPLE}-strip CACHE FILEPATH "")

# Look for libraries and headers in the target's sysroot only; programs
# (cmake's own helpers) come from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${BEUSS_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
