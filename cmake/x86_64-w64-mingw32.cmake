# Cross-compiles a win32-x64 smoke build with Debian's mingw-w64 (posix thread
# model). Used with node-api-mingw.cmake, which makes the import library for
# node.exe. The binary shipped for Windows is built with MSVC in CI: this one
# lacks the delay-load hook and links the old msvcrt.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)

set(BEUSS_CROSS_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${BEUSS_CROSS_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${BEUSS_CROSS_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${BEUSS_CROSS_TRIPLE}-windres)
set(CMAKE_AR ${BEUSS_CROSS_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${BEUSS_CROSS_TRIPLE}-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP ${BEUSS_CROSS_TRIPLE}-strip CACHE FILEPATH "")
set(CMAKE_DLLTOOL ${BEUSS_CROSS_TRIPLE}-dlltool CACHE FILEPATH "")

set(CMAKE_FIND_ROOT_PATH /usr/${BEUSS_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
