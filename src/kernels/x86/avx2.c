/* placeholder */
#include "kernels/dispatch.h"
void slm_x86_avx2_install(slm_type_traits t[SLM_N_TRAITS]) { (void)t; }
