// OpenBLAS's CBLAS interface (Debian installs it under openblas-pthread/,
// which pkg-config adds to the include path).
#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
#include <cblas.h>
#endif
