/*
 * Test plumbing for running the Windows build under Wine (tests/e2e/windows.rs); never
 * shipped.
 *
 * Rust's standard library (1.78 and later) gets its random bytes from ProcessPrng in
 * bcryptprimitives.dll, which Windows 10 and later have and Wine 8.0 (Debian 12) does not,
 * so the binary would not load. This DLL, placed next to vault.exe, provides ProcessPrng on
 * top of RtlGenRandom (advapi32's SystemFunction036), which Wine implements with the host's
 * random source. Windows itself never sees this file.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a 32-bit length; ask in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
