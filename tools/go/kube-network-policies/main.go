// Command kube-network-policies enforces Kubernetes NetworkPolicies on one node: the upstream
// controller (sigs.k8s.io/kube-network-policies, pkg/networkpolicy) queues the first packet of each
// connection to or from a local pod that a policy selects and gives a verdict in userspace.
//
// Upstream's main only runs inside a pod (in-cluster config) and stops cleanly only on SIGINT. Our
// nodes run it as a process in each node's network namespace, like kube-proxy: this main reads a
// kubeconfig, and on SIGTERM or SIGINT waits for the controller to delete its nftables table
// before it exits, so stopping it by pid leaves no rules behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		kubeconfig  = flag.String("kubeconfig", "", "kubeconfig of this node's kube-network-policies identity (required)")
		nodeName    = flag.String("hostname-override", "", "name of the Node whose pods this process guards (required)")
		queueID     = flag.Int("nfqueue-id", 100, "netfilter queue the first packets of connections go to")
		metricsAddr = flag.String("metrics-bind-address", "127.0.0.1:9080", "address of the /metrics endpoint")
		failOpen    = flag.Bool("fail-open", false, "accept packets while no process reads the queue (default: drop)")
		dnsFix      = flag.Bool("netfilter-bug-1766-fix", false, "queue DNS in PREROUTING (only kernels before 6.12 need it)")
		stopTimeout = flag.Duration("shutdown-timeout", 10*time.Second, "how long to wait for the rules to be removed on exit")
	)
	logConfig := logsapi.NewLoggingConfiguration()
	logsapi.AddGoFlags(logConfig, flag.CommandLine)
	flag.Parse()
	logs.InitLogs()
	if err := logsapi.ValidateAndApply(logConfig, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *kubeconfig == "" || *nodeName == "" {
		fmt.Fprintln(os.Stderr, "--kubeconfig and --hostname-override are required")
		return 2
	}
	if _, _, err := net.SplitHostPort(*metricsAddr); err != nil {
		fmt.Fprintf(os.Stderr, "--metrics-bind-address %q: %v\n", *metricsAddr, err)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	logger := klog.FromContext(ctx)

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logger.Error(err, "reading kubeconfig", "path", *kubeconfig)
		return 1
	}
	// Core objects in protobuf, as upstream does.
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		logger.Error(err, "creating the client")
		return 1
	}

	informerFactory := informers.NewSharedInformerFactory(client, 0)
	controller, err := networkpolicy.NewController(
		client,
		informerFactory.Networking().V1().NetworkPolicies(),
		informerFactory.Core().V1().Namespaces(),
		informerFactory.Core().V1().Pods(),
		nil, nil, nil, nil, // AdminNetworkPolicy and BaselineAdminNetworkPolicy (alpha) are off
		networkpolicy.Config{
			FailOpen:            *failOpen,
			QueueID:             *queueID,
			NodeName:            *nodeName,
			NetfilterBug1766Fix: *dnsFix,
			// Pod addresses come from the API server: NRI's socket is one per host, not per node,
			// and containerd 1.6 has no NRI.
			NRIdisabled: true,
		},
	)
	if err != nil {
		logger.Error(err, "creating the network policy controller")
		return 1
	}

	metrics := &http.Server{Addr: *metricsAddr, Handler: promhttp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := metrics.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "metrics endpoint", "address", *metricsAddr)
		}
	}()

	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx) }()
	informerFactory.Start(ctx.Done())

	select {
	case err = <-done: // the controller gave up (e.g. it could not open the queue)
		logger.Error(err, "controller stopped")
		cancel()
		return 1
	case <-ctx.Done():
	}
	// Run returns after its deferred cleanup has deleted the nftables table.
	select {
	case <-done:
	case <-time.After(*stopTimeout):
		logger.Info("controller did not stop in time; its nftables table may remain", "timeout", *stopTimeout)
	}
	shutdown, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	_ = metrics.Shutdown(shutdown)
	informerFactory.Shutdown()
	logger.Info("stopped")
	return 0
}
