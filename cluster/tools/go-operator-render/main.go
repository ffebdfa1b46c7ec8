// go-operator-render: the Go sriov-network-operator's rendering, driven
// without a cluster, for sriov-rs's differential test (issue 16;
// docs/testing.md, "Go peers"). Glue code of sriov-rs only: every decision
// is made by the upstream module's own exported code.
//
//	go-operator-render render [--nic-ids TSV] [--manifests DIR] FILE…
//	    Reads YAML streams (the inputs of `sriov-network-operator render -f`),
//	    runs upstream's SriovNetworkNodePolicyReconciler.Reconcile against a
//	    controller-runtime fake client holding those objects, and renders
//	    every SriovNetwork/SriovIBNetwork of the operator namespace with
//	    upstream's RenderNetAttDef (its bindata templates). Prints a report.
//	go-operator-render canon FILE|-
//	    Reads the YAML stream our render prints and prints the same report
//	    from it (node-state specs decoded strictly into upstream's types).
//
// The report (JSON): node states (name, namespace, owners, spec) of the
// nodes the operator selected, the device-plugin ConfigMap (owners, data:
// strings kept byte for byte), each node's device-plugin label, and the NADs
// (name, namespace, annotations, spec.config byte for byte).
//
// NAMESPACE and RESOURCE_PREFIX come from the environment, as upstream's.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	netattdefv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sriovnetworkv1 "github.com/k8snetworkplumbingwg/sriov-network-operator/api/v1"
	"github.com/k8snetworkplumbingwg/sriov-network-operator/controllers"
	"github.com/k8snetworkplumbingwg/sriov-network-operator/pkg/consts"
	"github.com/k8snetworkplumbingwg/sriov-network-operator/pkg/featuregate"
	"github.com/k8snetworkplumbingwg/sriov-network-operator/pkg/vars"
)

// The upstream reconciler's request name (unexported there).
const nodePolicySyncEventName = "node-policy-sync-event"

type nodeStateOut struct {
	Name            string                                   `json:"name"`
	Namespace       string                                   `json:"namespace"`
	OwnerReferences []metav1.OwnerReference                  `json:"ownerReferences,omitempty"`
	Spec            sriovnetworkv1.SriovNetworkNodeStateSpec `json:"spec"`
}

type configMapOut struct {
	Name            string                  `json:"name"`
	Namespace       string                  `json:"namespace"`
	OwnerReferences []metav1.OwnerReference `json:"ownerReferences,omitempty"`
	Data            map[string]string       `json:"data"`
}

type nadOut struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Config      string            `json:"config"`
}

type report struct {
	NodeStates []nodeStateOut    `json:"nodeStates"`
	ConfigMap  *configMapOut     `json:"deviceConfigMap"`
	NodeLabels map[string]string `json:"deviceLabels"`
	NADs       []nadOut          `json:"nads"`
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go-operator-render render [--nic-ids TSV] [--manifests DIR] [NORMALIZE…] FILE…\n       go-operator-render canon [NORMALIZE…] FILE|-\nNORMALIZE (one per documented difference, docs/differences.md):\n  --sort-interfaces            node-state spec.interfaces by pciAddress\n  --drop-nad-annotation KEY    leave KEY out of NAD annotations")
	os.Exit(2)
}

// normalization hides one documented difference in both reports.
type normalization struct {
	sortInterfaces bool
	dropAnnotation []string
}

// flag consumes a normalization flag at args[i]; returns the next index or
// -1 when args[i] is not one.
func (n *normalization) flag(args []string, i int) int {
	switch args[i] {
	case "--sort-interfaces":
		n.sortInterfaces = true
		return i + 1
	case "--drop-nad-annotation":
		if i+1 == len(args) {
			usage()
		}
		n.dropAnnotation = append(n.dropAnnotation, args[i+1])
		return i + 2
	}
	return -1
}

func (n *normalization) apply(r *report) {
	if n.sortInterfaces {
		for i := range r.NodeStates {
			ifs := r.NodeStates[i].Spec.Interfaces
			sort.SliceStable(ifs, func(a, b int) bool { return ifs[a].PciAddress < ifs[b].PciAddress })
		}
	}
	for i := range r.NADs {
		for _, k := range n.dropAnnotation {
			delete(r.NADs[i].Annotations, k)
		}
		if len(r.NADs[i].Annotations) == 0 {
			r.NADs[i].Annotations = nil
		}
	}
}

func main() {
	ctrl.SetLogger(logr.Discard())
	if len(os.Args) < 2 {
		usage()
	}
	var (
		r   *report
		err error
	)
	switch os.Args[1] {
	case "render":
		r, err = render(os.Args[2:])
	case "canon":
		var norm normalization
		args := os.Args[2:]
		i := 0
		for i < len(args) {
			next := norm.flag(args, i)
			if next < 0 {
				break
			}
			i = next
		}
		if len(args)-i != 1 {
			usage()
		}
		r, err = canon(args[i])
		if err == nil {
			norm.apply(r)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-operator-render %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

// docs reads the YAML documents of a file ("-" = stdin), Lists flattened;
// namespaced objects without a namespace get the operator namespace (as
// our render mode does).
func docs(path string) ([]map[string]interface{}, error) {
	var rd io.Reader
	if path == "-" {
		rd = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		rd = f
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(rd), 4096)
	var out []map[string]interface{}
	var add func(m map[string]interface{})
	add = func(m map[string]interface{}) {
		kind, _ := m["kind"].(string)
		if strings.HasSuffix(kind, "List") {
			items, _ := m["items"].([]interface{})
			for _, it := range items {
				if im, ok := it.(map[string]interface{}); ok {
					add(im)
				}
			}
			return
		}
		if kind != "Node" && kind != "Namespace" {
			if md, ok := m["metadata"].(map[string]interface{}); ok {
				if ns, _ := md["namespace"].(string); ns == "" {
					md["namespace"] = vars.Namespace
				}
			}
		}
		out = append(out, m)
	}
	for {
		var m map[string]interface{}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if m == nil {
			continue
		}
		add(m)
	}
}

// typed decodes a document into an API type as the API server's JSON
// decoder would.
func typed(m map[string]interface{}, into interface{}) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

func strictTyped(v interface{}, into interface{}) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// loadNicIDs reads our data/supported-nic-ids.tsv format (model, vendor, PF
// id, VF id tab separated) into upstream's NicIDMap ("vendor pf vf").
func loadNicIDs(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var ids []string
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "model_key") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 4 {
			return fmt.Errorf("%s line %d: want 4 tab-separated columns", path, i+1)
		}
		ids = append(ids, cols[1]+" "+cols[2]+" "+cols[3])
	}
	sriovnetworkv1.InitNicIDMapFromList(ids)
	return nil
}

func render(args []string) (*report, error) {
	var files []string
	var norm normalization
	manifests := ""
	for i := 0; i < len(args); i++ {
		if next := norm.flag(args, i); next >= 0 {
			i = next - 1
			continue
		}
		switch args[i] {
		case "--nic-ids":
			i++
			if i == len(args) {
				usage()
			}
			if err := loadNicIDs(args[i]); err != nil {
				return nil, err
			}
		case "--manifests":
			i++
			if i == len(args) {
				usage()
			}
			manifests = args[i]
		default:
			files = append(files, args[i])
		}
	}
	if len(files) == 0 {
		usage()
	}
	if manifests == "" {
		// Installed next to the binary by cluster/go-peer.sh.
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		manifests = filepath.Join(filepath.Dir(exe), "..", "bindata", "manifests", "cni-config")
	}
	sriovnetworkv1.ManifestsPath = manifests

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, sriovnetworkv1.AddToScheme, netattdefv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}

	var objs []client.Object
	var networks []*sriovnetworkv1.SriovNetwork
	var ibNetworks []*sriovnetworkv1.SriovIBNetwork
	for _, f := range files {
		ds, err := docs(f)
		if err != nil {
			return nil, err
		}
		for n, d := range ds {
			kind, _ := d["kind"].(string)
			var o client.Object
			switch kind {
			case "Node":
				o = &corev1.Node{}
			case "Namespace":
				o = &corev1.Namespace{}
			case "NetworkAttachmentDefinition":
				o = &netattdefv1.NetworkAttachmentDefinition{}
			case "SriovNetworkNodePolicy":
				o = &sriovnetworkv1.SriovNetworkNodePolicy{}
			case "SriovNetworkNodeState":
				o = &sriovnetworkv1.SriovNetworkNodeState{}
			case "SriovNetwork":
				o = &sriovnetworkv1.SriovNetwork{}
			case "SriovIBNetwork":
				o = &sriovnetworkv1.SriovIBNetwork{}
			case "SriovOperatorConfig":
				o = &sriovnetworkv1.SriovOperatorConfig{}
			case "SriovNetworkPoolConfig":
				o = &sriovnetworkv1.SriovNetworkPoolConfig{}
			default:
				return nil, fmt.Errorf("%s document %d: kind %q not read", f, n+1, kind)
			}
			if err := typed(d, o); err != nil {
				return nil, fmt.Errorf("%s document %d (%s): %w", f, n+1, kind, err)
			}
			switch x := o.(type) {
			case *sriovnetworkv1.SriovNetwork:
				networks = append(networks, x)
			case *sriovnetworkv1.SriovIBNetwork:
				ibNetworks = append(ibNetworks, x)
			}
			objs = append(objs, o)
		}
	}

	c := fake.NewClientBuilder().
		WithScheme(scheme).
		WithObjects(objs...).
		WithStatusSubresource(&sriovnetworkv1.SriovNetworkNodeState{}, &sriovnetworkv1.SriovNetworkNodePolicy{},
			&sriovnetworkv1.SriovNetwork{}, &sriovnetworkv1.SriovIBNetwork{}, &sriovnetworkv1.SriovOperatorConfig{}).
		Build()
	ctx := context.Background()

	rec := &controllers.SriovNetworkNodePolicyReconciler{Client: c, Scheme: scheme, FeatureGate: featuregate.New()}
	if _, err := rec.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: nodePolicySyncEventName}}); err != nil {
		return nil, fmt.Errorf("policy reconcile: %w", err)
	}

	out := &report{NodeStates: []nodeStateOut{}, NodeLabels: map[string]string{}, NADs: []nadOut{}}
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, types.NamespacedName{Namespace: vars.Namespace, Name: consts.ConfigMapName}, cm)
	if err == nil {
		out.ConfigMap = &configMapOut{Name: cm.Name, Namespace: cm.Namespace, OwnerReferences: cm.OwnerReferences, Data: cm.Data}
		if out.ConfigMap.Data == nil {
			out.ConfigMap.Data = map[string]string{}
		}
		// The ConfigMap has one key per node the reconciler selected.
		names := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			ns := &sriovnetworkv1.SriovNetworkNodeState{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: vars.Namespace, Name: name}, ns); err != nil {
				return nil, fmt.Errorf("node state %s: %w", name, err)
			}
			out.NodeStates = append(out.NodeStates, nodeStateOut{Name: ns.Name, Namespace: ns.Namespace, OwnerReferences: ns.OwnerReferences, Spec: ns.Spec})
			node := &corev1.Node{}
			if err := c.Get(ctx, types.NamespacedName{Name: name}, node); err != nil {
				return nil, fmt.Errorf("node %s: %w", name, err)
			}
			out.NodeLabels[name] = node.Labels[consts.SriovDevicePluginLabel]
		}
	}

	// Networks: upstream's network controllers reconcile only objects of
	// the operator namespace (Reconcile sets req.Namespace to it).
	sort.Slice(networks, func(i, j int) bool { return networks[i].Name < networks[j].Name })
	sort.Slice(ibNetworks, func(i, j int) bool { return ibNetworks[i].Name < ibNetworks[j].Name })
	var crs []controllers.NetworkCRInstance
	for _, n := range networks {
		if n.Namespace == vars.Namespace {
			crs = append(crs, n)
		}
	}
	for _, n := range ibNetworks {
		if n.Namespace == vars.Namespace {
			crs = append(crs, n)
		}
	}
	for _, cr := range crs {
		nad, err := renderNAD(ctx, c, scheme, cr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cr.GetName(), err)
		}
		if nad != nil {
			out.NADs = append(out.NADs, *nad)
		}
	}
	norm.apply(out)
	return out, nil
}

// renderNAD is what upstream's network reconciler does with a network CR,
// up to the object it would create: RenderNetAttDef, conversion to the
// typed NAD, spec.config indented with four spaces (its formatJSON), and no
// NAD while the target namespace does not exist.
func renderNAD(ctx context.Context, c client.Client, scheme *runtime.Scheme, cr controllers.NetworkCRInstance) (*nadOut, error) {
	raw, err := cr.RenderNetAttDef()
	if err != nil {
		return nil, err
	}
	nad := &netattdefv1.NetworkAttachmentDefinition{}
	if err := scheme.Convert(raw, nad, nil); err != nil {
		return nil, err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(nad.Spec.Config), "", "    "); err != nil {
		return nil, fmt.Errorf("rendered config is not JSON: %w", err)
	}
	target := &corev1.Namespace{}
	if err := c.Get(ctx, types.NamespacedName{Name: nad.Namespace}, target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return &nadOut{Name: nad.Name, Namespace: nad.Namespace, Annotations: nad.Annotations, Config: pretty.String()}, nil
}

// canon builds the report from our render's YAML stream.
func canon(path string) (*report, error) {
	ds, err := docs(path)
	if err != nil {
		return nil, err
	}
	out := &report{NodeStates: []nodeStateOut{}, NodeLabels: map[string]string{}, NADs: []nadOut{}}
	for n, d := range ds {
		kind, _ := d["kind"].(string)
		where := fmt.Sprintf("%s document %d (%s)", path, n+1, kind)
		switch kind {
		case "SriovNetworkNodeState":
			ns := &sriovnetworkv1.SriovNetworkNodeState{}
			if err := typed(d, ns); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			// The spec strictly: a field upstream's type lacks is a difference.
			var spec sriovnetworkv1.SriovNetworkNodeStateSpec
			if s, ok := d["spec"]; ok {
				if err := strictTyped(s, &spec); err != nil {
					return nil, fmt.Errorf("%s: spec does not decode strictly into upstream's type: %w", where, err)
				}
			}
			out.NodeStates = append(out.NodeStates, nodeStateOut{Name: ns.Name, Namespace: ns.Namespace, OwnerReferences: ns.OwnerReferences, Spec: spec})
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := typed(d, cm); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if cm.Name != consts.ConfigMapName {
				continue
			}
			out.ConfigMap = &configMapOut{Name: cm.Name, Namespace: cm.Namespace, OwnerReferences: cm.OwnerReferences, Data: cm.Data}
			if out.ConfigMap.Data == nil {
				out.ConfigMap.Data = map[string]string{}
			}
		case "Node":
			node := &corev1.Node{}
			if err := typed(d, node); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if v, ok := node.Labels[consts.SriovDevicePluginLabel]; ok {
				out.NodeLabels[node.Name] = v
			}
		case "NetworkAttachmentDefinition":
			nad := &netattdefv1.NetworkAttachmentDefinition{}
			if err := typed(d, nad); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			out.NADs = append(out.NADs, nadOut{Name: nad.Name, Namespace: nad.Namespace, Annotations: nad.Annotations, Config: nad.Spec.Config})
		}
	}
	sort.SliceStable(out.NodeStates, func(i, j int) bool { return out.NodeStates[i].Name < out.NodeStates[j].Name })
	return out, nil
}
