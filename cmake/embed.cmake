# Writes a C file holding the bytes of a file, for resources compiled into
# the binary (the dashboard page). Run as a build step:
#
#   cmake -DSRC=page.html -DDST=page.c -DSYMBOL=symbol -P embed.cmake
#
# DST defines `const unsigned char SYMBOL[]` (the bytes plus a terminating
# NUL, not counted) and `const size_t SYMBOL_len`.
foreach(v SRC DST SYMBOL)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "embed.cmake: -D${v}= is required")
  endif()
endforeach()

file(READ "${SRC}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
# 16 bytes a line, then every byte as 0xNN.
string(REPEAT "[0-9a-f]" 32 row)
string(REGEX REPLACE "(${row})" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(src "${SRC}" NAME)
file(WRITE "${DST}.tmp"
  "/* Generated from ${src} by cmake/embed.cmake; do not edit. */\n"
  "#include <stddef.h>\n\n"
  "const unsigned char ${SYMBOL}[] = {\n${bytes}0x00};\n"
  "const size_t ${SYMBOL}_len = ${len};\n")
file(RENAME "${DST}.tmp" "${DST}")
