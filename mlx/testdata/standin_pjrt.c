/* A stand-in PJRT plugin for mlx's backend tests: a shared library that exports only
 * GetPjrtApi, returning a table whose leading fields (as pjrt_c_api.h lays them out)
 * report the PJRT C API version STANDIN_MAJOR.STANDIN_MINOR given on the compiler's
 * command line. It cannot run anything: the tests only read its version. */
#include <stddef.h>

typedef struct {
	size_t struct_size;
	void* extension_start;
	int major_version;
	int minor_version;
} standin_version;

typedef struct {
	size_t struct_size;
	void* extension_start;
	standin_version pjrt_api_version;
} standin_api;

static const standin_api api = {
	sizeof(standin_api), NULL,
	{sizeof(standin_version), NULL, STANDIN_MAJOR, STANDIN_MINOR},
};

const standin_api* GetPjrtApi(void) { return &api; }
