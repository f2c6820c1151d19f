"""The contract every layer shares: names, labels, annotations, data keys, URL forms, the
metadata addresses in every form, the cluster-scoped kinds, and the one reader of
manifests (the pods of any workload, the Secrets a pod reads, label selectors).

A leaf: plain values in, plain values out, the standard library only, and imports between
its modules relative. The program, the config's validation, the audit and the admission
policies import it as `infra.contract`. The policy pack runs in its own virtualenv without
`infra`, so it holds a generated copy in `policies/rules/contract/` (`make contract`),
which `tests/unit/test_contract.py` holds byte-equal to this folder.
"""
