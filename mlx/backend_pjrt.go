package mlx

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stddef.h>

// The leading fields of PJRT_Api as pjrt_c_api.h lays them out: the table's size, its
// extension list, then a PJRT_Api_Version (size, extension list, major, minor). These
// leading fields are the same in every PJRT C API version, so any plugin can be read.
typedef struct {
	size_t struct_size;
	void* extension_start;
	int major_version;
	int minor_version;
} mlx_pjrt_api_version;

typedef struct {
	size_t struct_size;
	void* extension_start;
	mlx_pjrt_api_version pjrt_api_version;
} mlx_pjrt_api_head;

typedef const mlx_pjrt_api_head* (*mlx_get_pjrt_api)(void);

// mlx_read_pjrt_version loads the plugin and reads the version its GetPjrtApi reports.
// It returns NULL on success, or a message. The library stays loaded on success:
// go-xla loads the same file next, and unloading an XLA plugin can run static
// destructors that do not expect it.
static const char* mlx_read_pjrt_version(const char* path, int* major, int* minor) {
	void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		const char* msg = dlerror();
		return msg != NULL ? msg : "dlopen failed";
	}
	mlx_get_pjrt_api get = (mlx_get_pjrt_api)dlsym(handle, "GetPjrtApi");
	if (get == NULL) {
		dlclose(handle);
		return "it exports no GetPjrtApi function: not a PJRT plugin";
	}
	const mlx_pjrt_api_head* api = get();
	if (api == NULL) {
		return "its GetPjrtApi returned NULL";
	}
	if (api->struct_size < sizeof(mlx_pjrt_api_head)) {
		return "its PJRT_Api table is too small to hold a version";
	}
	*major = api->pjrt_api_version.major_version;
	*minor = api->pjrt_api_version.minor_version;
	return NULL;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// readPJRTVersion loads the PJRT plugin at path and returns the PJRT C API version its
// GetPjrtApi reports (the version of pjrt_c_api.h it was built with). It needs no GPU:
// the CUDA plugins answer on any machine.
func readPJRTVersion(path string) (PJRTVersion, error) {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	var major, minor C.int
	if msg := C.mlx_read_pjrt_version(cPath, &major, &minor); msg != nil {
		return PJRTVersion{}, fmt.Errorf("mlx: reading the PJRT C API version of %s: %s", path, C.GoString(msg))
	}
	return PJRTVersion{Major: int(major), Minor: int(minor)}, nil
}
