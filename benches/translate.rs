//! Translation cost: 1k, 5k and 10k routes over half as many upstreams (mixed prefix, exact,
//! regex and header matchers, spread over 100 VirtualServices), translated from scratch; one
//! VirtualService edited (incremental); and one endpoint change at 5,000 upstreams, handed over
//! as the whole map (`update_endpoints`) and as a change (`apply_endpoint_changes`).
//!
//! Run: `cargo bench -p gloo-benches --bench translate`.

use std::collections::BTreeMap;

#[path = "workload.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gloo_core::model::ResourceRef;
use gloo_core::source::SourceSnapshot;
use gloo_core::translate::{Endpoint, EndpointChanges, Translator};

/// A config of `routes` routes over `routes / 2` upstreams in 100 VirtualServices.
fn config(routes: usize) -> SourceSnapshot {
    workload::snapshot("", routes, (routes / 2).max(1))
}

fn endpoints(upstreams: usize, generation: u32) -> BTreeMap<ResourceRef, Vec<Endpoint>> {
    (0..upstreams)
        .map(|u| {
            let port = if u == 0 { 9000 + generation } else { 9000 };
            (
                ResourceRef::new("apps", format!("svc-{u}")),
                vec![Endpoint::new(format!("10.0.{}.{}", u / 250, u % 250), port)],
            )
        })
        .collect()
}

fn full_translation(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate_from_scratch");
    group.sample_size(10);
    for routes in [1_000usize, 5_000, 10_000] {
        let snapshot = config(routes);
        group.throughput(Throughput::Elements(routes as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(routes),
            &snapshot,
            |b, snapshot| b.iter(|| Translator::new().translate(snapshot)),
        );
    }
    group.finish();
}

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental_10k_routes");
    group.sample_size(10);
    let base = config(10_000);
    // The same config with one VirtualService's first route changed.
    let mut edited = base.clone();
    if let Some(gloo_core::model::Resource::VirtualService(vs)) = edited
        .resources
        .iter_mut()
        .map(|r| &mut r.resource)
        .find(|r| matches!(r, gloo_core::model::Resource::VirtualService(_)))
    {
        if let Some(route) = std::sync::Arc::make_mut(vs)
            .spec
            .virtual_host
            .as_mut()
            .and_then(|vh| vh.routes.first_mut())
        {
            std::sync::Arc::make_mut(route.options.get_or_insert_with(Default::default)).timeout =
                Some(gloo_core::model::Duration::from_secs(7));
        }
    }
    let mut translator = Translator::new();
    translator.translate(&base);
    translator.update_endpoints(endpoints(5_000, 0));
    let mut flip = false;
    group.bench_function("one_virtual_service_edited", |b| {
        b.iter(|| {
            flip = !flip;
            translator.translate(if flip { &edited } else { &base })
        })
    });
    let mut generation = 0;
    group.bench_function("one_endpoint_changed_5k_upstreams", |b| {
        b.iter_batched(
            || {
                generation += 1;
                endpoints(5_000, generation)
            },
            |update| translator.update_endpoints(update).len(),
            criterion::BatchSize::LargeInput,
        )
    });
    // The fast path discovery takes: only the changed upstream is handed over.
    group.bench_function("one_endpoint_change_applied_5k_upstreams", |b| {
        b.iter_batched(
            || {
                generation += 1;
                let mut changes = EndpointChanges::default();
                changes.set(
                    ResourceRef::new("apps", "svc-0"),
                    vec![Endpoint::new("10.0.0.0", 9000 + generation)],
                );
                changes
            },
            |changes| translator.apply_endpoint_changes(&changes).len(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, full_translation, incremental);
criterion_main!(benches);
