// Package deploy holds no code: its directory carries duochrome's
// deployment files (deploy/kubernetes, a kustomize base and an overlay;
// deploy/compose.yaml; deploy/broker.json, the image's broker policy),
// and its tests prove them, with the Dockerfile at the repository root,
// without a container engine:
//
//   - manifests_test.go decodes every manifest strictly into the
//     Kubernetes API types and checks the security invariants that
//     SECURITY.md's capability table derives; exposure_test.go, that the base requires the
//     token from its Secret and hands out the pod's own session URLs;
//     autoscale_test.go, the examples under kubernetes/examples;
//   - dockerfile_test.go checks the Dockerfile statically, and
//     compose_test.go compose.yaml's token and published port;
//   - runc_test.go enacts the Deployment's securityContext with runc as
//     a CRI runtime would, on a root file system laid out as the image
//     is, with the token Secret, fsGroup and environment as the kubelet
//     provides them, runs a real session through it with the token, and
//     shows that each misconfiguration of the capability table fails with
//     the broker's diagnosis in the container's output, and that a
//     container without a token refuses to start. It needs root and runc.
package deploy
