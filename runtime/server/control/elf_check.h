/*
 * The first check of an uploaded artifact, before it is written anywhere
 * or loaded (deploy.c): its bytes must start as an ELF shared object for
 * this machine. Only the ELF header is read: the rest is checked by the
 * dynamic loader of a throw-away validation worker.
 */
#ifndef IMP_ELF_CHECK_H
#define IMP_ELF_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* 0 when p[0..n) holds a whole 64-bit little-endian ELF header of type
 * ET_DYN for this machine (EM_X86_64 or EM_AARCH64); else -1 with the
 * reason written into why (NUL-terminated, truncated to whylen). Reads no
 * byte past p[n - 1]. */
int imp_elf_check(const uint8_t *p, size_t n, char *why, size_t whylen);

#endif
