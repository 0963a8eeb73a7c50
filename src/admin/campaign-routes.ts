import { ApiError } from '../http/errors.js';
import type { Res } from '../http/respond.js';
import { campaignToApi } from '../model/campaign.js';
import { listQueryOf } from './catalogue.js';
import type { Campaigns, WriteResult } from './campaigns.js';
import { etagOf } from './edits.js';
import type { AdminRouter } from './router.js';

/**
 * The campaign routes of the admin API (docs/api.md, admin section): create, replace, merge-patch,
 * archive and restore, budget operations and their audit, listing and bulk creation.
 */
export function registerCampaignRoutes(router: AdminRouter, campaigns: Campaigns): void {
  const { route } = router;
  const written = (res: Res, w: WriteResult, status = w.created ? 201 : 200): void =>
    router.send(res, status, { campaign: campaignToApi(w.record), status: w.status }, { etag: etagOf(w.record.config.version) });

  route('post', '/v1/campaigns', true, async (res, _params, { actor, body, preconditions }) => {
    written(res, await campaigns.upsert(body, actor, undefined, preconditions));
  });

  route('post', '/v1/campaigns/bulk', true, async (res, _params, { actor, body }) => {
    const results = await campaigns.bulk(body, actor);
    const count = (pred: (s: number) => boolean): number => results.filter((r) => pred(r.status)).length;
    router.send(res, 200, { results, created: count((s) => s === 201), replaced: count((s) => s === 200), failed: count((s) => s >= 400) });
  });

  route('get', '/v1/campaigns', false, (res, _params, { query }) => {
    const page = campaigns.list(listQueryOf(query));
    router.send(res, 200, { campaigns: page.records.map(campaignToApi), nextCursor: page.nextCursor });
  });

  route('get', '/v1/campaigns/:id', false, (res, [id]) => {
    const record = campaigns.get(id!);
    if (record === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    router.send(res, 200, { campaign: campaignToApi(record) }, { etag: etagOf(record.config.version) });
  });

  route('put', '/v1/campaigns/:id', true, async (res, [id], { actor, body, preconditions }) => {
    written(res, await campaigns.upsert(body, actor, id, preconditions));
  });

  route('patch', '/v1/campaigns/:id', true, async (res, [id], { actor, body, preconditions, contentType }) => {
    if (contentType.split(';')[0]!.trim() !== 'application/merge-patch+json') {
      throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'PATCH takes a JSON Merge Patch: send Content-Type: application/merge-patch+json');
    }
    written(res, await campaigns.patch(id!, body, actor, preconditions));
  });

  route('del', '/v1/campaigns/:id', false, async (res, [id], { actor, preconditions }) => {
    written(res, await campaigns.setArchived(id!, true, actor, preconditions), 200);
  });

  route('post', '/v1/campaigns/:id/restore', false, async (res, [id], { actor, preconditions }) => {
    written(res, await campaigns.setArchived(id!, false, actor, preconditions), 200);
  });

  route('post', '/v1/campaigns/:id/budget', true, async (res, [id], { actor, body, preconditions }) => {
    const w = await campaigns.budget(id!, body, actor, preconditions);
    router.send(res, 200, { campaign: campaignToApi(w.record), status: w.status, change: w.change }, { etag: etagOf(w.record.config.version) });
  });

  route('get', '/v1/campaigns/:id/budget-changes', false, async (res, [id], { query }) => {
    router.send(res, 200, await campaigns.budgetChanges(id!, query));
  });
}
