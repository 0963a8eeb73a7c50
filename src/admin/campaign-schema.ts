/** The campaign model moved to src/model/campaign.ts (one home for it); kept for older imports. */
export { type CampaignRecord, campaignToApi, parseCampaign } from '../model/campaign.js';
