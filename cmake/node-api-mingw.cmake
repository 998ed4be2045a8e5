# Included right after project(beuss) (scripts/prebuildify.js passes it as
# CMAKE_PROJECT_beuss_INCLUDE) when cross-building the addon with mingw-w64,
# so that binding/ needs no Windows-specific code for this smoke build.
#
# - Node-API functions live in node.exe: make an import library for it from
#   the .def file that node-api-headers ships, and link the addon against it
#   through CMAKE_JS_LIB (which cmake-js leaves empty on a Linux host).
# - A DLL is a RUNTIME output: send it where cmake-js sends the LIBRARY
#   outputs (build/Release), where prebuildify looks for the .node file.
# - Link the GCC runtimes statically so the DLL imports only system DLLs
#   and node.exe.
if(NOT MINGW)
  message(FATAL_ERROR "node-api-mingw.cmake is for mingw-w64 cross builds only")
endif()
if(NOT BEUSS_NODE_API_DEF OR NOT EXISTS "${BEUSS_NODE_API_DEF}")
  message(FATAL_ERROR "BEUSS_NODE_API_DEF must name node-api-headers' def/node_api.def (got '${BEUSS_NODE_API_DEF}')")
endif()
if(NOT CMAKE_DLLTOOL)
  find_program(CMAKE_DLLTOOL NAMES x86_64-w64-mingw32-dlltool dlltool REQUIRED)
endif()

set(BEUSS_NODE_IMPLIB "${CMAKE_BINARY_DIR}/libnode_api.a")
execute_process(
  COMMAND "${CMAKE_DLLTOOL}" -d "${BEUSS_NODE_API_DEF}" -l "${BEUSS_NODE_IMPLIB}"
  RESULT_VARIABLE beuss_dlltool_result)
if(NOT beuss_dlltool_result EQUAL 0)
  message(FATAL_ERROR "dlltool failed (${beuss_dlltool_result}) making ${BEUSS_NODE_IMPLIB}")
endif()
set(CMAKE_JS_LIB "${BEUSS_NODE_IMPLIB}")

if(CMAKE_LIBRARY_OUTPUT_DIRECTORY)
  set(CMAKE_RUNTIME_OUTPUT_DIRECTORY "${CMAKE_LIBRARY_OUTPUT_DIRECTORY}")
endif()
add_link_options(-static -static-libgcc -static-libstdc++)
