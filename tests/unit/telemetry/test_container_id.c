/* test_container_id.c — the cgroup path table against real-world paths
 * (published in the test data of cAdvisor-era agents, NeuVector, the Datadog
 * tracers, libsinsp, and seen on kind, EKS/Bottlerocket, OpenShift, GKE and
 * podman hosts), plus whole /proc/PID/cgroup contents. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "telemetry/container_id.h"
#include "unit.h"

#define ID_A  "3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f869860"
#define ID_B  "3e74d3fd9db4c9dd921ae05c2502fb984d0cde1b36e581b13f79c639da4518a1"
#define ID_C  "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830"
#define ID_D  "d6d725b909f37c3e232aadfbafa950a58bfe7baa579ba8c47a12be88bb921607"
#define ID_E  "d3d8ccf5cca91931c6285c1d7472c413dd5a7700fddc0aa9f89a9ac7008b003e"
#define ID_F  "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
#define UID1  "dd1bf9d1-241d-47f5-8e25-12de83135812"
#define UID1_ "dd1bf9d1_241d_47f5_8e25_12de83135812"

enum {
	RT_NONE = CONTAINER_RUNTIME_NONE,
	RT_UNK = CONTAINER_RUNTIME_UNKNOWN,
	RT_CTD = CONTAINER_RUNTIME_CONTAINERD,
	RT_CRIO = CONTAINER_RUNTIME_CRIO,
	RT_DOCK = CONTAINER_RUNTIME_DOCKER,
	RT_POD = CONTAINER_RUNTIME_PODMAN
};
enum {
	Q_NONE = POD_QOS_NONE,
	Q_G = POD_QOS_GUARANTEED,
	Q_B = POD_QOS_BURSTABLE,
	Q_BE = POD_QOS_BESTEFFORT
};

struct path_case {
	const char *path;
	int ret;
	const char *id;
	const char *pod_uid;
	int runtime;
	int qos;
	const char *unit;
	const char *ns;
	bool monitor;
	bool relative;
};

static const struct path_case cases[] = {
    /* Docker, cgroupfs driver (Datadog container-tagging examples). */
    {"/docker/" ID_A, 1, ID_A, "", RT_DOCK, Q_NONE, "", "", false, false},
    /* Docker on Debian (NeuVector): the id right under the root. */
    {"/4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970", 1,
     "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970", "", RT_UNK, Q_NONE, "", "",
     false, false},
    /* Docker, systemd driver (CentOS). */
    {"/system.slice/docker-" ID_F ".scope", 1, ID_F, "", RT_DOCK, Q_NONE, "", "", false, false},
    /* Docker in docker (RancherOS): the innermost container. */
    {"/docker/a9a5ad238e59234193ee7ec3fcff5e735b3708ea1068826952255b69e3cfa413/docker/"
     "ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787a",
     1, "ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787a", "", RT_DOCK, Q_NONE, "",
     "", false, false},
    /* docker-ce snap layout. */
    {"/docker-ce/docker/26c927d78b3a0ac080354a74649d61cec26c3064426f6173b242356e75a324e3", 1,
     "26c927d78b3a0ac080354a74649d61cec26c3064426f6173b242356e75a324e3", "", RT_DOCK, Q_NONE, "",
     "", false, false},
    /* ECS on EC2 and Fargate: a container, runtime not in the path. */
    {"/ecs/haissam-ecs-classic/5a0d5ceddf6c44c1928d367a815d890f/"
     "38fac3e99302b3622be089dd41e7ccf38aff368a86cc339972075136ee2710ce",
     1, "38fac3e99302b3622be089dd41e7ccf38aff368a86cc339972075136ee2710ce", "", RT_UNK, Q_NONE, "",
     "", false, false},
    {"/ecs/55091c13-b8cf-4801-b527-f4601742204d/"
     "432624d2150b349fe35ba397284dea788c2bf66b885d14dfc1569b01890ca7da",
     1, "432624d2150b349fe35ba397284dea788c2bf66b885d14dfc1569b01890ca7da", "", RT_UNK, Q_NONE, "",
     "", false, false},
    /* kubelet cgroupfs driver, BestEffort (Datadog, Qard/container-info,
     * NeuVector, containerd 1.2). */
    {"/kubepods/besteffort/pod3d274242-8ee0-11e9-a8a6-1e68d864ef1a/" ID_B, 1, ID_B,
     "3d274242-8ee0-11e9-a8a6-1e68d864ef1a", RT_UNK, Q_BE, "", "", false, false},
    {"/kubepods/besteffort/pod74c13223-5a00-11e9-b385-42010a80018d/"
     "34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376",
     1, "34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376",
     "74c13223-5a00-11e9-b385-42010a80018d", RT_UNK, Q_BE, "", "", false, false},
    {"/kubepods/besteffort/pod74ba62da-1a3d-11e7-bb11-080027cb0e22/"
     "cb1eadb7abe3a6545e9856411207073277838e1bdc003337c2f8685faeedc32c",
     1, "cb1eadb7abe3a6545e9856411207073277838e1bdc003337c2f8685faeedc32c",
     "74ba62da-1a3d-11e7-bb11-080027cb0e22", RT_UNK, Q_BE, "", "", false, false},
    {"/kubepods/besteffort/poda36d0c1d-0b26-4451-8d80-9c195e004afa/"
     "5dd96d5394ca930a854a390ea46f7515a8bc930123eb3251ba20f2708a38fc61",
     1, "5dd96d5394ca930a854a390ea46f7515a8bc930123eb3251ba20f2708a38fc61",
     "a36d0c1d-0b26-4451-8d80-9c195e004afa", RT_UNK, Q_BE, "", "", false, false},
    /* A sub-cgroup the container made below its own (kube-proxy). */
    {"/kubepods/besteffort/podf8a694f2-7c08-11e9-98da-000c29077430/"
     "c04e0a88a1de067f25bece337d4dbb897396e0b623c2a65330850fc9823f1903/kube-proxy",
     1, "c04e0a88a1de067f25bece337d4dbb897396e0b623c2a65330850fc9823f1903",
     "f8a694f2-7c08-11e9-98da-000c29077430", RT_UNK, Q_BE, "", "", false, false},
    /* cgroupfs driver, Burstable and Guaranteed (GKE cgroup v1). */
    {"/kubepods/burstable/pod9b2d4b4c-96a5-4d4f-a0b1-5a6f0c3a7e11/" ID_B, 1, ID_B,
     "9b2d4b4c-96a5-4d4f-a0b1-5a6f0c3a7e11", RT_UNK, Q_B, "", "", false, false},
    {"/kubepods/pod9b2d4b4c-96a5-4d4f-a0b1-5a6f0c3a7e11/" ID_B, 1, ID_B,
     "9b2d4b4c-96a5-4d4f-a0b1-5a6f0c3a7e11", RT_UNK, Q_G, "", "", false, false},
    /* The pod's own cgroup: a pod, no container. */
    {"/kubepods/burstable/pod9b2d4b4c-96a5-4d4f-a0b1-5a6f0c3a7e11", 0, "",
     "9b2d4b4c-96a5-4d4f-a0b1-5a6f0c3a7e11", RT_NONE, Q_B, "", "", false, false},
    /* systemd driver with Docker (NeuVector Kubepods2). */
    {"/kubepods.slice/kubepods-besteffort.slice/"
     "kubepods-besteffort-pod045b1e35_7f13_11e7_ac42_0050568ffca0.slice/"
     "docker-b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70.scope",
     1, "b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70",
     "045b1e35-7f13-11e7-ac42-0050568ffca0", RT_DOCK, Q_BE, "", "", false, false},
    /* systemd driver with containerd (EKS Bottlerocket). */
    {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID1_
     ".slice/cri-containerd-" ID_C ".scope",
     1, ID_C, UID1, RT_CTD, Q_BE, "", "", false, false},
    /* The same pod, Burstable and Guaranteed. */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID1_
     ".slice/cri-containerd-" ID_C ".scope",
     1, ID_C, UID1, RT_CTD, Q_B, "", "", false, false},
    {"/kubepods.slice/kubepods-pod" UID1_ ".slice/cri-containerd-" ID_C ".scope", 1, ID_C, UID1,
     RT_CTD, Q_G, "", "", false, false},
    /* kind (kubelet's cgroup root under kubelet.slice). */
    {"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
     "kubelet-kubepods-besteffort-pod" UID1_ ".slice/cri-containerd-" ID_C ".scope",
     1, ID_C, UID1, RT_CTD, Q_BE, "", "", false, false},
    /* A kind node is itself a Docker container: the pod's container wins. */
    {"/system.slice/docker-" ID_F ".scope/kubelet.slice/kubelet-kubepods.slice/"
     "kubelet-kubepods-pod" UID1_ ".slice/cri-containerd-" ID_C ".scope",
     1, ID_C, UID1, RT_CTD, Q_G, "", "", false, false},
    {"/docker/" ID_F "/kubepods/besteffort/pod" UID1 "/" ID_C, 1, ID_C, UID1, RT_UNK, Q_BE, "", "",
     false, false},
    /* CRI-O, systemd driver (OpenShift 4.6, crio 1.19). */
    {"/kubepods.slice/kubepods-besteffort.slice/"
     "kubepods-besteffort-pod8ca306fa_3c03_47fa_97dd_19979c345572.slice/crio-" ID_D ".scope",
     1, ID_D, "8ca306fa-3c03-47fa-97dd-19979c345572", RT_CRIO, Q_BE, "", "", false, false},
    /* CRI-O, a static pod (uid = 32-hex config hash), Burstable (crio 1.17). */
    {"/kubepods.slice/kubepods-burstable.slice/"
     "kubepods-burstable-pod487a0dc6dccaeefbcfedba7a7ce1ca18.slice/"
     "crio-7a1fd6fe8cdfbd44dc78c4cc85dad7031eaab4365801684cad0aabdeaf863f9e.scope",
     1, "7a1fd6fe8cdfbd44dc78c4cc85dad7031eaab4365801684cad0aabdeaf863f9e",
     "487a0dc6dccaeefbcfedba7a7ce1ca18", RT_CRIO, Q_B, "", "", false, false},
    /* CRI-O's conmon: the pod's monitor process, not the container. */
    {"/kubepods.slice/kubepods-burstable.slice/"
     "kubepods-burstable-pod8ca306fa_3c03_47fa_97dd_19979c345572.slice/crio-conmon-" ID_D ".scope",
     0, "", "", RT_CRIO, Q_NONE, "", "", true, false},
    /* CRI-O, cgroupfs driver. */
    {"/kubepods/burstable/pod8ca306fa-3c03-47fa-97dd-19979c345572/crio-" ID_D, 1, ID_D,
     "8ca306fa-3c03-47fa-97dd-19979c345572", RT_CRIO, Q_B, "", "", false, false},
    /* containerd 1.4 with a systemd-style cgroup parent on cgroupfs: the
     * unconverted "slice:prefix:id" form, with and without a service above. */
    {"/system.slice/containerd.service/"
     "kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:cri-containerd:" ID_E,
     1, ID_E, "2105e389-7471-476e-a50f-6074cef29bbd", RT_CTD, Q_BE, "", "", false, false},
    {"/kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:cri-containerd:" ID_E, 1,
     ID_E, "2105e389-7471-476e-a50f-6074cef29bbd", RT_CTD, Q_BE, "", "", false, false},
    {"/kubepods-burstable-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:crio:" ID_D, 1, ID_D,
     "2105e389-7471-476e-a50f-6074cef29bbd", RT_CRIO, Q_B, "", "", false, false},
    /* podman: root (machine.slice, the "container" sub-cgroup crun makes),
     * rootless, cgroupfs manager, and conmon. */
    {"/machine.slice/libpod-" ID_A ".scope/container", 1, ID_A, "", RT_POD, Q_NONE, "", "", false,
     false},
    {"/machine.slice/libpod-" ID_A ".scope", 1, ID_A, "", RT_POD, Q_NONE, "", "", false, false},
    {"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_A ".scope", 1, ID_A, "",
     RT_POD, Q_NONE, "", "", false, false},
    {"/libpod_parent/libpod-" ID_A, 1, ID_A, "", RT_POD, Q_NONE, "", "", false, false},
    {"/machine.slice/libpod-conmon-" ID_A ".scope", 0, "", "", RT_POD, Q_NONE, "", "", true, false},
    /* Plain containerd (ctr run): /<namespace>/<id>. */
    {"/k8s.io/" ID_B, 1, ID_B, "", RT_CTD, Q_NONE, "", "k8s.io", false, false},
    {"/default/" ID_B, 1, ID_B, "", RT_CTD, Q_NONE, "", "default", false, false},
    {"/moby/" ID_B, 1, ID_B, "", RT_DOCK, Q_NONE, "", "", false, false},
    /* Seen from inside a cgroup namespace. */
    {"/../../kubepods-besteffort-pod" UID1_ ".slice/cri-containerd-" ID_C ".scope", 1, ID_C, UID1,
     RT_CTD, Q_BE, "", "", false, true},
    {"/../" ID_C, 1, ID_C, "", RT_UNK, Q_NONE, "", "", false, true},
    {"/..", 0, "", "", RT_NONE, Q_NONE, "", "", false, true},
    {"/", 0, "", "", RT_NONE, Q_NONE, "", "", false, false},
    /* Host processes: systemd services name them. */
    {"/system.slice/orders.service", 0, "", "", RT_NONE, Q_NONE, "orders", "", false, false},
    {"/system.slice/containerd.service", 0, "", "", RT_NONE, Q_NONE, "containerd", "", false,
     false},
    {"/system.slice/kubelet.service", 0, "", "", RT_NONE, Q_NONE, "kubelet", "", false, false},
    {"/system.slice/system-getty.slice/getty@tty1.service", 0, "", "", RT_NONE, Q_NONE,
     "getty@tty1", "", false, false},
    {"/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, "", "", RT_NONE,
     Q_NONE, "foo", "", false, false},
    {"/user.slice/user-1000.slice/user@1000.service/init.scope", 0, "", "", RT_NONE, Q_NONE,
     "user@1000", "", false, false},
    {"/user.slice/user-1000.slice/session-3.scope", 0, "", "", RT_NONE, Q_NONE, "", "", false,
     false},
    {"/user/1000.user/c2.session", 0, "", "", RT_NONE, Q_NONE, "", "", false, false},
    {"/init.scope", 0, "", "", RT_NONE, Q_NONE, "", "", false, false},
    /* This sandbox's own memory cgroup: a 32-hex name is no container id. */
    {"/process_api/3dd61298df7bde3405f1b5ca1f2968f0", 0, "", "", RT_NONE, Q_NONE, "", "", false,
     false},
    /* Near misses: 63 and 65 hex digits, a non-hex digit, an odd pod uid. */
    {"/system.slice/docker-9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3.scope",
     0, "", "", RT_NONE, Q_NONE, "", "", false, false},
    {"/docker/" ID_A "0", 0, "", "", RT_NONE, Q_NONE, "", "", false, false},
    {"/docker/3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f86986g", 0, "", "", RT_NONE,
     Q_NONE, "", "", false, false},
    {"/kubepods/besteffort/podnot-a-uid/" ID_B, 1, ID_B, "", RT_UNK, Q_NONE, "", "", false, false},
    /* Upper case ids are reported in lower case. */
    {"/docker/3726184226F5D3147C25FDEAB5B60097E378E8A720503A5E19ECFDF29F869860", 1, ID_A, "",
     RT_DOCK, Q_NONE, "", "", false, false},
    /* Doubled slashes and a trailing slash. */
    {"//kubepods//besteffort/pod" UID1 "//" ID_C "/", 1, ID_C, UID1, RT_UNK, Q_BE, "", "", false,
     false},
};

static void test_path_table(void)
{
	int n = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct path_case *c = &cases[i];
		struct container_identity id;
		int ret = container_id_parse_path(c->path, strlen(c->path), &id);
		int before = unit_failed_checks;
		CHECK_EQ_INT(ret, c->ret);
		CHECK_EQ_STR(id.id, c->id);
		CHECK_EQ_STR(id.pod_uid, c->pod_uid);
		CHECK_EQ_INT(id.runtime, c->runtime);
		CHECK_EQ_INT(id.qos, c->qos);
		CHECK_EQ_STR(id.unit, c->unit);
		CHECK_EQ_STR(id.ctr_namespace, c->ns);
		CHECK_EQ_INT(id.monitor, c->monitor);
		CHECK_EQ_INT(id.relative, c->relative);
		if (unit_failed_checks != before)
			fprintf(stderr, "  in case %zu: %s\n", i, c->path);
		n++;
	}
	CHECK(n >= 40);
}

static void test_path_errors(void)
{
	struct container_identity id;
	char big[5000];
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	CHECK_EQ_INT(container_id_parse_path(NULL, 0, &id), -EINVAL);
	CHECK_EQ_INT(container_id_parse_path("/", 1, NULL), -EINVAL);
	CHECK_EQ_INT(container_id_parse_path(big, sizeof(big), &id), -E2BIG);
	CHECK_EQ_STR(id.id, "");
	CHECK_EQ_INT(container_id_parse_path("", 0, &id), 0);
	/* The length given is honoured: a prefix of a container path. */
	const char *p = "/docker/" ID_A;
	CHECK_EQ_INT(container_id_parse_path(p, 8 + 63, &id), 0);
	CHECK_EQ_INT(container_id_parse_path(p, strlen(p) + 1, &id), 1); /* with its NUL */
}

/* NeuVector's Kubepods3 sample: a hybrid host with a merged v1 hierarchy. */
static const char proc_hybrid[] =
    "8:pids:/kubepods/besteffort/pod1fe19bf5-e8ef-11e8-900c-52daee5a874d/"
    "da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d\n"
    "3:rdma:/\n"
    "2:cpuset,cpu,cpuacct,memory,net_cls,net_prio,hugetlb:/kubepods/besteffort/"
    "pod1fe19bf5-e8ef-11e8-900c-52daee5a874d/"
    "da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d\n"
    "1:name=systemd:/kubepods/besteffort/pod1fe19bf5-e8ef-11e8-900c-52daee5a874d/"
    "da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d\n";

static void test_proc_hybrid(void)
{
	struct container_identity id;
	CHECK_EQ_INT(container_id_parse_proc(proc_hybrid, strlen(proc_hybrid), &id), 1);
	CHECK_EQ_STR(id.id, "da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d");
	CHECK_EQ_STR(id.pod_uid, "1fe19bf5-e8ef-11e8-900c-52daee5a874d");
	CHECK_EQ_INT(id.qos, POD_QOS_BESTEFFORT);
}

static void test_proc_v2(void)
{
	struct container_identity id;
	const char *s = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID1_
	                ".slice/cri-containerd-" ID_C ".scope\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_C);
	CHECK_EQ_STR(id.pod_uid, UID1);
	CHECK_EQ_INT(id.runtime, CONTAINER_RUNTIME_CONTAINERD);
	/* No final newline. */
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s) - 1, &id), 1);
	CHECK_EQ_STR(id.id, ID_C);
}

static void test_proc_preference(void)
{
	struct container_identity id;
	/* v2 beats name=systemd beats memory beats the rest. */
	const char *s = "5:cpu:/docker/" ID_A "\n"
	                "4:memory:/docker/" ID_B "\n"
	                "1:name=systemd:/docker/" ID_C "\n"
	                "0::/docker/" ID_D "\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_D);
	s = "5:cpu:/docker/" ID_A "\n4:memory:/docker/" ID_B "\n1:name=systemd:/docker/" ID_C "\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_C);
	s = "5:cpu:/docker/" ID_A "\n4:cpuacct,memory:/docker/" ID_B "\n0::/\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_B);
	/* A line that names a container beats a v2 line that does not. */
	s = "0::/\n7:pids:/docker/" ID_A "\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_A);
}

static void test_proc_host_service(void)
{
	struct container_identity id;
	/* Hybrid host: only name=systemd and v2 lines carry the service. */
	const char *s = "12:memory:/system.slice\n"
	                "11:cpu,cpuacct:/system.slice\n"
	                "1:name=systemd:/system.slice/orders.service\n"
	                "0::/system.slice/orders.service\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 0);
	CHECK_EQ_STR(id.unit, "orders");
	CHECK_EQ_STR(id.id, "");
	/* The v2 line is "/" (controllers all on v1): name=systemd decides. */
	s = "1:name=systemd:/system.slice/nginx.service\n0::/\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 0);
	CHECK_EQ_STR(id.unit, "nginx");
	/* This machine's own file. */
	s = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/3dd61298df7bde3405f1b5ca1f2968f0\n"
	    "0::/\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 0);
	CHECK_EQ_STR(id.unit, "");
	CHECK_EQ_INT(id.runtime, CONTAINER_RUNTIME_NONE);
}

static void test_proc_containerd_1_4(void)
{
	/* NeuVector's containerd 1.4.4 sample: two spellings on different lines. */
	const char *s =
	    "11:pids:/system.slice/containerd.service/"
	    "kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:cri-containerd:" ID_E
	    "\n10:freezer:/kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:"
	    "cri-containerd:" ID_E "\n"
	    "1:name=systemd:/system.slice/containerd.service/"
	    "kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:cri-containerd:" ID_E
	    "\n";
	struct container_identity id;
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_E);
	CHECK_EQ_STR(id.pod_uid, "2105e389-7471-476e-a50f-6074cef29bbd");
	CHECK_EQ_STR(id.unit, "");
}

static void test_proc_malformed(void)
{
	struct container_identity id;
	const char *s = "garbage\n:x:/docker/" ID_A "\nx:y:/docker/" ID_A "\n7:pids\n\n\n"
	                "7:pids:/docker/" ID_B "\n";
	CHECK_EQ_INT(container_id_parse_proc(s, strlen(s), &id), 1);
	CHECK_EQ_STR(id.id, ID_B);
	CHECK_EQ_INT(container_id_parse_proc("", 0, &id), 0);
	CHECK_EQ_INT(container_id_parse_proc(NULL, 0, &id), -EINVAL);
	char *big = calloc(1, CONTAINER_CGROUP_MAX + 2);
	CHECK(big != NULL);
	if (big) {
		CHECK_EQ_INT(container_id_parse_proc(big, CONTAINER_CGROUP_MAX + 1, &id), -E2BIG);
		free(big);
	}
}

static void test_read_file(void)
{
	char path[] = "/tmp/test_container_id_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, proc_hybrid, strlen(proc_hybrid)) == (ssize_t)strlen(proc_hybrid));
	close(fd);
	struct container_identity id;
	CHECK_EQ_INT(container_id_read(path, &id), 1);
	CHECK_EQ_STR(id.id, "da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d");
	unlink(path);
	CHECK_EQ_INT(container_id_read(path, &id), -ENOENT);
	CHECK(container_id_read("/proc/self/cgroup", &id) >= 0);
}

static void test_names(void)
{
	CHECK_EQ_STR(container_runtime_name(CONTAINER_RUNTIME_CONTAINERD), "containerd");
	CHECK_EQ_STR(container_runtime_name(CONTAINER_RUNTIME_CRIO), "cri-o");
	CHECK_EQ_STR(container_runtime_name(CONTAINER_RUNTIME_DOCKER), "docker");
	CHECK_EQ_STR(container_runtime_name(CONTAINER_RUNTIME_PODMAN), "podman");
	CHECK_EQ_STR(container_runtime_name(CONTAINER_RUNTIME_UNKNOWN), "");
	CHECK_EQ_STR(pod_qos_name(POD_QOS_BESTEFFORT), "BestEffort");
	CHECK_EQ_STR(pod_qos_name(POD_QOS_NONE), "");
}

int main(void)
{
	RUN(test_path_table);
	RUN(test_path_errors);
	RUN(test_proc_hybrid);
	RUN(test_proc_v2);
	RUN(test_proc_preference);
	RUN(test_proc_host_service);
	RUN(test_proc_containerd_1_4);
	RUN(test_proc_malformed);
	RUN(test_read_file);
	RUN(test_names);
	return unit_summary("test_container_id");
}
