/*
 * The first check of an uploaded artifact (elf_check.h).
 */
#include "server/control/elf_check.h"

#include <elf.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#define IMP_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define IMP_ELF_MACHINE EM_AARCH64
#else
#error "unsupported architecture: add its ELF machine here"
#endif

int imp_elf_check(const uint8_t *p, size_t n, char *why, size_t whylen) {
  if (n < sizeof(Elf64_Ehdr) || memcmp(p, ELFMAG, SELFMAG) != 0) {
    snprintf(why, whylen, "not an ELF file (%zu bytes, no ELF magic)", n);
    return -1;
  }
  if (p[EI_CLASS] != ELFCLASS64) {
    snprintf(why, whylen, "ELF class %d, this machine needs 64-bit objects",
             p[EI_CLASS]);
    return -1;
  }
  if (p[EI_DATA] != ELFDATA2LSB) {
    snprintf(why, whylen, "ELF byte order is not little-endian");
    return -1;
  }
  Elf64_Ehdr eh;
  memcpy(&eh, p, sizeof eh);
  if (eh.e_type != ET_DYN) {
    snprintf(why, whylen,
             "ELF type %u is not a shared object (build with -shared -fPIC)",
             eh.e_type);
    return -1;
  }
  if (eh.e_machine != IMP_ELF_MACHINE) {
    snprintf(why, whylen, "ELF machine %u does not match this machine (%u)",
             eh.e_machine, IMP_ELF_MACHINE);
    return -1;
  }
  return 0;
}
